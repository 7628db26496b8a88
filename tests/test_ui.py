"""``make ui``: the MLflow UI on 127.0.0.1 over the smoke pipeline's store, started and stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmark.arms import ARMS
from tests.pipeline import VENV_BIN, environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # LISTEN
            octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
            found.add(".".join(octets))
    return found


def test_make_ui_serves_the_runs_on_localhost_and_stops(smoke_pipeline: tuple[Path, str]) -> None:
    repo, _ = smoke_pipeline
    port = _free_port()
    venv = VENV_BIN.parent
    server = subprocess.Popen(
        ["make", "-o", f"{venv}/.setup-stamp", "ui", f"VENV={venv}", f"UI_PORT={port}"],
        cwd=repo,
        env=environment(repo),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: make, mlflow and the server workers
    )
    try:
        deadline = time.monotonic() + 120
        experiment = None
        while experiment is None:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the MLflow UI did not answer within 120 s"
            try:
                experiment = _api(port, "experiments/get-by-name?experiment_name=rls3-clip")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        assert _listening_addresses(port) == {"127.0.0.1"}
        experiment_id = experiment["experiment"]["experiment_id"]
        runs = _api(port, "runs/search", {"experiment_ids": [experiment_id]})["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)
        assert names == sorted(f"{arm}-seed0" for arm in ARMS)
        for run in runs:
            metrics = {m["key"] for m in run["data"]["metrics"]}
            assert {"test/metric", "val/metric", "valid_rate", "generated_samples"} <= metrics
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            assert tags["profile"] == "smoke" and tags["model"] == "clip"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    deadline = time.monotonic() + 30
    while _listening_addresses(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _listening_addresses(port)
