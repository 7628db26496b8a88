"""One-node Ray clusters for the tests: ``ray start --head`` on 127.0.0.1, each with its own
temporary directory and, in token mode, its own random token in a file there
(RAY_AUTH_TOKEN_PATH): nothing is read from or written to ``~/.ray``. Each head is stopped by its
processes (found by a variable in their environment), not by ``ray stop``, which would stop every
Ray process of the machine."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmark.grid import AUTH_VARIABLES
from benchmark.sim.unity import free_port
from tests.pipeline import ROOT, VENV_BIN, environment

HEAD_MARK = "RLS3_TEST_RAY_HEAD"  # in the environment of every process of a head started here


@dataclass
class Head:
    """A one-node Ray cluster started by ``ray start --head`` here."""

    address: str  # 127.0.0.1:PORT
    temp: Path  # its --temp-dir; also holds its token file
    home: Path  # the HOME it was started with
    token: Path | None  # the file with its token (RAY_AUTH_TOKEN_PATH); None: no authentication


def clean_environment(home: Path) -> dict[str, str]:
    """The project's environment with ``home`` as HOME and none of Ray's auth variables."""
    env = {**environment(ROOT), "HOME": str(home)}
    for name in AUTH_VARIABLES:
        env.pop(name, None)
    return env


def start_head(home: Path, *, token: bool, cpus: int = 2) -> Head:
    """``ray start --head`` on a free port of 127.0.0.1, in token mode with a new random token in
    a file of its own temporary directory (``token``), or without authentication."""
    temp = Path(tempfile.mkdtemp(prefix="/tmp/ray-"))  # Ray's socket paths must stay short
    env = {**clean_environment(home), HEAD_MARK: str(temp)}
    token_file = None
    if token:
        token_file = temp / "auth_token"
        token_file.write_text(secrets.token_hex(32))
        token_file.chmod(0o600)
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    start = [
        str(VENV_BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--num-cpus", str(cpus), "--num-gpus", "0",
        "--include-dashboard", "false", "--ray-client-server-port", str(free_port()),
        "--temp-dir", str(temp / "ray"), "--disable-usage-stats",
    ]  # fmt: skip
    done = subprocess.run(start, capture_output=True, text=True, env=env, timeout=180)
    head = Head(f"127.0.0.1:{port}", temp, home, token_file)
    if done.returncode != 0:
        stop_head(head)
        raise AssertionError(done.stdout[-3000:] + done.stderr[-3000:])
    return head


def head_processes(head: Head) -> set[psutil.Process]:
    """The processes of ``head`` (and no other Ray's on this machine): those with its mark in
    their environment, and their descendants (its agents and workers rewrite their title over
    their environment)."""
    procs: set[psutil.Process] = set()
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(HEAD_MARK) == str(head.temp):
                procs.add(proc)
                procs.update(proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return procs


def stop_head(head: Head) -> None:
    """Stop every process of ``head`` (and only those), then remove its directory. They are
    found before any is stopped: the agents and workers outlive a stopped raylet, and the
    agents ignore SIGTERM."""
    procs = head_processes(head)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    shutil.rmtree(head.temp, ignore_errors=True)


@contextlib.contextmanager
def running_head(home: Path, *, token: bool, cpus: int = 2) -> Iterator[Head]:
    """``start_head``, stopped (``stop_head``) on leaving, whatever happened inside."""
    head = start_head(home, token=token, cpus=cpus)
    try:
        yield head
    finally:
        stop_head(head)
