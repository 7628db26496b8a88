"""``make bench MODEL=M`` (``rls3 bench``): one model's DVC stages, cached, then its report, timed.

With ``engine`` local (the default) or ray, DVC makes the runs' inputs (the agents pre-trained
beside the base model's training, then recorded), ``rls3 grid`` makes the runs on Ray, side by
side, and DVC then records them (docs/guide.md, "The pipeline" and "Run on a cluster");
``dvc`` makes every stage by ``dvc repro``, one after another, with the same files.

What the bench made outside DVC, with the commands of DVC's own stages (the agents, the grid's
runs), DVC records as ``dvc commit`` does, all of them in this process. ``dvc repro`` would run
each stage's command again to find its output made from these inputs: for a run, a process that
imports torch and reads the data sets, about 8 s, so 7 of a 60-minute bench's minutes for fifty
runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark import layout
from benchmark.config import load_params
from benchmark.fileio import atomic_write_json
from benchmark.perf.speed import speed_sample
from benchmark.reference import fingerprint, machine
from benchmark.slots import run_stage


def _dvc(env: dict[str, str], *targets: str) -> int:
    """``dvc repro TARGETS``' exit code, with a line on failure."""
    code = subprocess.run([sys.executable, "-m", "dvc", "repro", *targets], env=env).returncode
    if code != 0:
        print(f"rls3 bench: dvc repro {' '.join(targets)} failed (exit {code})", file=sys.stderr)
    return code


def _record(stages: list[str]) -> int:
    """``dvc commit --force`` of ``stages``, whose commands this bench has just run (the
    agents' and the grid's runs, from the inputs DVC made before them): DVC records each
    stage's deps, params and outputs as ``dvc repro`` would after running its command; the exit
    code. Through DVC's own stage calls, with one write of dvc.lock: ``dvc commit`` rewrites the
    whole lock after each stage (2.3 of its 2.8 s a stage, on a lock of a hundred stages)."""
    from dvc.repo import Repo, lock_repo

    try:
        with Repo() as repo, lock_repo(repo):
            infos = [info for name in stages for info in repo.stage.collect_granular(name)]
            for info in infos:
                info.stage.save()
                info.stage.commit(filter_info=info.filter_info)
            if len({info.stage.dvcfile.path for info in infos}) > 1:
                raise ValueError("the stages are in more than one dvc.yaml")
            if infos:
                made = [info.stage for info in infos]
                infos[0].stage.dvcfile.dump_stages(made, update_pipeline=False)
    except Exception as err:  # DVC's own errors name the stage and the file
        print(f"rls3 bench: recording {len(stages)} stages failed: {err}", file=sys.stderr)
        return 1
    return 0


def _up_to_date(target: str, env: dict[str, str]) -> bool:
    """True when ``dvc status --with-deps TARGET`` finds nothing to make but the check stage
    (it runs on every ``dvc repro``; run it first, for its files stand for the code, the weights
    and the external sets): `make bench` again on a finished pipeline then leaves Ray and the
    agents' pre-training alone and goes straight to ``dvc repro``."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--with-deps", "--json", target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return False  # DVC says why in the `dvc repro` that follows
    try:
        changed = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        return False
    return set(changed) <= {"check"}


def _side_by_side(jobs: dict[str, list[str]], env: dict[str, str], workers: int) -> list[str]:
    """Run the commands of ``jobs`` (name -> argv), at most ``workers`` at a time, in order;
    the names of those that failed."""
    waiting = list(jobs.items())
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    failed: list[str] = []
    while waiting or running:
        while waiting and len(running) < workers:
            name, argv = waiting.pop(0)
            running.append((name, subprocess.Popen(argv, env=env)))
        time.sleep(0.2)
        for job in [j for j in running if j[1].poll() is not None]:
            running.remove(job)
            if job[1].returncode != 0:
                failed.append(job[0])
    return failed


def _inputs(model: str, env: dict[str, str]) -> int:
    """The runs' inputs: the check and the datasets, then the base model's training (by DVC)
    and the agents' pre-training (``rls3 pretrain-agent``, one thread each), side by side, one
    per core; DVC records the agents (``dvc commit``), and ``dvc repro agent`` then marks the
    slots no model uses."""
    code = _dvc(env, "check", "datasets")
    if code != 0:
        return code
    profile = load_params().active
    seeds = profile.agent_seeds  # as the agent stage's slots
    jobs = {f"base_model@{model}": [sys.executable, "-m", "dvc", "repro", f"base_model@{model}"]}
    for s in range(seeds):
        jobs[f"agent of seed {s}"] = [
            sys.executable,
            "-m",
            "benchmark.cli",
            "pretrain-agent",
            "--seed",
            str(s),
        ]
    failed = _side_by_side(jobs, env, max(1, len(os.sched_getaffinity(0)) // profile.threads))
    if failed:
        print(f"rls3 bench: {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return _record([f"agent@{s}" for s in range(seeds)]) or _dvc(env, "agent")


def bench(
    model: str, engine: str = "local", address: str | None = None, *, yes: bool = False
) -> int:
    """Run ``dvc repro report@model`` (after the grid, with ``engine`` local or ray) and write
    ``results/report/model/bench.json`` with its wall time; returns the exit code."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    if yes:
        env["RLS3_YES"] = "1"  # read by `rls3 check`, the pipeline's first stage
    target = f"report@{model}"
    threads = load_params().active.threads
    speed = {"start": speed_sample(threads)}  # before the clock: it is not the pipeline's time
    start = time.perf_counter()
    if engine != "dvc" and (code := _dvc(env, "check")) != 0:
        return code
    if engine != "dvc" and _up_to_date(target, env):
        print(f"rls3 bench: every stage of {target} is up to date; no grid to run")
    elif engine != "dvc":  # the runs' inputs by DVC, the runs on Ray, then DVC records them
        if engine == "ray":  # a cluster the grid would refuse is said before any long stage
            from benchmark.grid import check_cluster

            check_cluster(address)
        print(f"rls3 bench: the runs' inputs by `dvc repro`, then `rls3 grid --engine {engine}`")
        code = _inputs(model, env)
        if code != 0:
            return code
        from benchmark.grid import format_grid, run_grid_file

        # a run that fails, or a cluster that refuses, raises: `rls3` says it in one line
        grid = run_grid_file("params.yaml", model, engine=engine, address=address)
        print(format_grid(grid))
        made = [
            run_stage(r["summary"]["arm"], model, r["summary"]["seed"]) for r in grid.runs.values()
        ]
        if (code := _record(made)) != 0:
            return code
    print(f"rls3 bench: `dvc repro {target}` (every stage it needs; cached stages are skipped)")
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", target], env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"rls3 bench: dvc repro failed (exit {done.returncode})", file=sys.stderr)
        return done.returncode
    speed["end"] = speed_sample(threads)
    report = layout.report(layout.RESULTS, model)
    atomic_write_json(
        report / "bench.json",
        {
            "command": f"make bench MODEL={model}"
            + (f" ENGINE={engine}" if engine != "local" else ""),
            "engine": engine,
            "wall_seconds": round(seconds, 1),
            "machine": machine(),
            "fingerprint": fingerprint(threads),
            # the machine's speed at the start and the end (``perf.speed``): two benches' wall
            # times compare once scaled by it
            "speed": speed,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "note": "wall time of this model's pipeline (set-up excluded): `dvc repro` and, with "
            "the local or ray engine, the grid of runs; stages DVC "
            "found up to date cost nothing",
        },
    )
    print(f"rls3 bench: {model} done in {seconds / 60:.1f} min; report: {report / 'REPORT.md'}")
    return 0
