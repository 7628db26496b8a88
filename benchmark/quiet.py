"""Silence what libraries print about things the project does on purpose (issue: a quiet terminal).

- PyBullet's C code writes ``pybullet build time: ...`` (to stderr) when it is imported and
  ``argv[0]=`` (to stdout) at each connection: ``c_output_silenced`` sends file descriptors 1
  and 2 to /dev/null around those two calls only.
- open_clip warns "No pretrained weights loaded ... initialized randomly" about a model built
  without weights: for the built-in model and ``ClipVLM.random`` that is the intent, so
  ``expected_random_init`` drops that one message around their creation.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_LIBC = ctypes.CDLL(None)


@contextmanager
def c_output_silenced() -> Iterator[None]:
    """File descriptors 1 and 2 go to /dev/null inside the block (C-level prints included)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        _LIBC.fflush(None)  # what C buffered inside the block goes to /dev/null too
        for fd, copy in enumerate(saved, start=1):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


class _DropRandomInit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


@contextmanager
def expected_random_init() -> Iterator[None]:
    """open_clip's "No pretrained weights loaded" warning is dropped inside the block."""
    drop = _DropRandomInit()
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
