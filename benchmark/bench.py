"""``make bench MODEL=M`` (``rls3 bench``): one model's DVC stages, cached, then its report, timed.

With ``engine`` local or ray, DVC makes the runs' inputs, ``rls3 grid`` makes the runs on Ray, and
DVC then records them (README, "Run on a cluster").
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark.fileio import atomic_write_json
from benchmark.report import machine


def bench(model: str, engine: str = "dvc", address: str | None = None, *, yes: bool = False) -> int:
    """Run ``dvc repro report@model`` (after the grid, with ``engine`` local or ray) and write
    ``results/report/model/bench.json`` with its wall time; returns the exit code."""
    from benchmark import cli

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    if yes:
        env["RLS3_YES"] = "1"  # read by `rls3 check`, the pipeline's first stage
    target = f"report@{model}"
    start = time.perf_counter()
    if engine != "dvc":  # the runs' inputs by DVC, the runs on Ray, then DVC records them
        upstream = ["check", "datasets", "agent", f"base_model@{model}"]
        print(f"rls3 bench: `dvc repro {' '.join(upstream)}`, then `rls3 grid` on Ray")
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "repro", *upstream], env=env, check=False
        )
        if done.returncode != 0:
            print(f"rls3 bench: dvc repro failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
        grid = ["grid", "--model", model, "--engine", engine]
        code = cli.main([*grid, *(["--address", address] if address else [])])
        if code != 0:
            return code
    print(f"rls3 bench: `dvc repro {target}` (every stage it needs; cached stages are skipped)")
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", target], env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"rls3 bench: dvc repro failed (exit {done.returncode})", file=sys.stderr)
        return done.returncode
    report = Path("results") / "report" / model
    atomic_write_json(
        report / "bench.json",
        {
            "command": f"make bench MODEL={model}"
            + (f" ENGINE={engine}" if engine != "dvc" else ""),
            "wall_seconds": round(seconds, 1),
            "machine": machine(),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "note": "wall time of `dvc repro` for this model (set-up excluded); stages DVC "
            "found up to date cost nothing",
        },
    )
    print(f"rls3 bench: {model} done in {seconds / 60:.1f} min; report: {report / 'REPORT.md'}")
    return 0
