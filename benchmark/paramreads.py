"""Which params keys a command reads, to hold dvc.yaml's params deps to them.

With ``RLS3_PARAMS_READS=DIR`` in the environment, ``rls3`` records every key of the params
file that the command reads (``profiles.bench.loop.t0``) and writes them as it exits, to
``DIR/<pid>-<ns>.json`` with the command's arguments. The smoke pipeline's test runs with it
(tests/test_pipeline.py): each stage must depend on every key its command reads, and read every
key it depends on. Unset, nothing is recorded and the schema's classes are untouched.

What counts as a read: a field of a block taken from a ``Params`` (``profile.loop.t0``). A value
that is itself a block is not a read; its own fields are. A block copied whole
(``dataclasses.replace``, ``override``) reads every field it copies, so it is recorded whole,
and the copy's reads are not followed.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmark.fileio import atomic_write_json

READS_ENV = "RLS3_PARAMS_READS"
_KEY = "_params_key"  # where a block reached from a Params keeps its key path
_reads: set[str] = set()
_root: type | None = None  # the schema's Params, once installed


def _recording_getattribute(self: Any, name: str) -> Any:
    """A schema block's attribute lookup that records its field reads by key."""
    value = object.__getattribute__(self, name)
    fields = type(self).__dataclass_fields__
    if name not in fields:
        return value
    own = object.__getattribute__(self, "__dict__")
    key = own.get(_KEY)
    if key is None and type(self) is _root:
        key = own[_KEY] = ""  # a params file: the root of every key
    if key is None:
        return value  # a block made in code, not read from a params file
    if name == "profiles" and key == "":
        for profile, block in value.items():
            object.__setattr__(block, _KEY, f"profiles.{profile}.")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        object.__setattr__(value, _KEY, f"{key}{name}.")
    else:
        _reads.add(key + name)
    return value


def install(folder: Path) -> None:
    """Record, from now on, every key of a params file this process reads, and write them to
    ``folder`` as it exits."""
    global _root
    if _root is not None:
        return
    from benchmark import config

    for cls in vars(config).values():
        if (
            isinstance(cls, type)
            and dataclasses.is_dataclass(cls)
            and cls.__module__ == config.__name__
        ):
            cls.__getattribute__ = _recording_getattribute  # type: ignore[method-assign]
    atexit.register(_write, folder)
    _root = config.Params


def install_from_env() -> None:
    """``install`` into the folder ``READS_ENV`` names, where it is set."""
    if folder := os.environ.get(READS_ENV):
        install(Path(folder))


def _write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{os.getpid()}-{time.time_ns()}.json"
    atomic_write_json(out, {"argv": sys.argv[1:], "reads": sorted(_reads)})
