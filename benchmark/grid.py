"""``rls3 grid``: one model's (arm, seed) runs as Ray tasks, on a local Ray instance or a cluster.

Each run is ``rls3 run``'s ``run_from_params``, unchanged: it writes the same run directory,
resumes from its last completed iteration, and tracks to the same MLflow store. Ray only decides
where and when each run happens:

- every (arm, seed) of the active profile is a task that asks for the profile's ``grid``
  resources (CPUs, GPUs, memory);
- a seed's budget arms (random, sac-dense) take its sac task's summary as an argument, so Ray
  starts them after the sac run, with its budget (generated samples) passed on; the task checks
  it against the sac run's ``summary.json``;
- a task whose worker died (or whose Unity player stopped) is retried ``grid.retries`` times,
  and the retry resumes the run from its checkpoint;
- the driver shows each run as queued, running (where, which attempt) or done.

Results land in ``results/`` as with ``dvc repro``: on a cluster, ``results/`` and ``datasets/``
must be one shared filesystem mounted at the same path on every node (README, "Run on a
cluster"). DVC stays the table of contents: after a grid, ``dvc repro`` finds each run finished
with unchanged inputs and records it in seconds (dvc.yaml's comments).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import ARMS, BUDGET_ARMS, Params, parse_params
from benchmark.fileio import atomic_write_json

ENGINES = ("local", "ray")


class GridError(RuntimeError):
    """A run that failed after its retries; the message names it and the cause."""


@dataclass
class GridReport:
    """What a grid did: each run's summary and attempts, and the wall time."""

    model: str
    profile: str
    engine: str
    wall_seconds: float = 0.0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "arm/seedS" -> record


def grid_runs(params: Params, model: str) -> list[tuple[str, int]]:
    """The (arm, seed) runs of ``model`` in the active profile, sac runs first."""
    seeds = range(params.active.model(model).seeds)
    return [("sac", s) for s in seeds] + [(a, s) for s in seeds for a in ARMS if a != "sac"]


def _key(arm: str, seed: int) -> str:
    return f"{arm}/seed{seed}"


def _progress_actor() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class Progress:
        """Where each run stands; tasks report to it, the driver reads it."""

        def __init__(self) -> None:
            self.runs: dict[str, dict[str, Any]] = {}

        def started(self, key: str, where: str) -> None:
            record = self.runs.setdefault(key, {"attempts": 0})
            record.update(state="running", where=where, attempts=record["attempts"] + 1)

        def done(self, key: str) -> None:
            self.runs[key]["state"] = "done"

        def snapshot(self) -> dict[str, dict[str, Any]]:
            return self.runs

    return Progress.remote()  # type: ignore[attr-defined]


def run_task(
    data: dict[str, Any],
    model: str,
    arm: str,
    seed: int,
    results: str,
    datasets: str,
    tracking: str | None,
    threads: int,
    progress: Any,
    sac_summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run on a Ray worker: ``run_from_params``, resuming wherever an earlier attempt
    stopped. ``data`` is the params file's content (workers need not see the file)."""
    import torch

    from benchmark.loop import RunConfig, budget_of, run_from_params

    key = _key(arm, seed)
    progress.started.remote(key, f"{socket.gethostname()} pid {os.getpid()}")
    if tracking:
        os.environ["MLFLOW_TRACKING_URI"] = tracking
    torch.set_num_threads(threads)  # as `rls3 run` would: the same sums, the same results
    params = parse_params(data)
    if sac_summary is not None:  # the budget Ray passed on is the one the sac run wrote
        cfg = RunConfig(model, arm, seed, params.profile, params.active, Path(results), Path())
        if budget_of(cfg) != sac_summary["generated_samples"]:
            raise RuntimeError(
                f"{key}: the sac run's summary on the shared filesystem does not match the one "
                f"Ray passed on ({sac_summary['generated_samples']} generated samples): is "
                f"{results} the same directory on every node?"
            )
    summary = run_from_params(
        params, model, arm, seed, results=Path(results), datasets=Path(datasets)
    )
    progress.done.remote(key)
    return summary


def _format(runs: list[tuple[str, int]], snapshot: dict[str, dict[str, Any]]) -> str:
    """One line per run: queued, running (where, attempt) or done."""
    lines = []
    for arm, seed in runs:
        record = snapshot.get(_key(arm, seed), {})
        state = record.get("state", "queued")
        detail = (
            f" on {record['where']}, attempt {record['attempts']}" if state == "running" else ""
        )
        lines.append(f"  {_key(arm, seed):<18} {state}{detail}")
    counts = {s: sum(1 for r in runs if snapshot.get(_key(*r), {}).get("state", "queued") == s)
              for s in ("queued", "running", "done")}  # fmt: skip
    head = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"grid: {head}\n" + "\n".join(lines)


def run_grid(
    data: dict[str, Any],
    model: str,
    *,
    engine: str = "local",
    address: str | None = None,
    results: str | Path = "results",
    datasets: str | Path = "datasets",
    num_cpus: int | None = None,
    poll_seconds: float = 2.0,
    echo: bool = True,
) -> GridReport:
    """Run ``model``'s grid of the profile in ``data`` (a loaded params file) on Ray.

    ``engine`` ``local`` starts a Ray instance on this machine (``num_cpus``: its CPUs, default
    all); ``ray`` joins a running cluster at ``address`` (default: the one ``ray start`` left
    on this node). The summaries are returned and written to ``results/grid/MODEL.json``.
    """
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}; choose one of {list(ENGINES)}")
    if engine == "ray":
        # `ray start` turns Ray's token authentication on (Ray 2.60); a driver in token mode
        # joins a cluster with or without it (the token: ~/.ray/auth_token or RAY_AUTH_TOKEN).
        # Ray reads the mode when it is first imported.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    params = parse_params(data)
    grid = params.active.grid
    results, datasets = Path(results).resolve(), Path(datasets).resolve()
    runs = grid_runs(params, model)
    report = GridReport(model, params.profile, engine)
    start = time.perf_counter()
    quiet = {"log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
    if engine == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)  # type: ignore[arg-type]
    else:
        ray.init(address=address or "auto", **quiet)  # type: ignore[arg-type]
    try:
        progress = _progress_actor()
        task = ray.remote(run_task).options(
            num_cpus=grid.cpus,
            num_gpus=grid.gpus,
            memory=int(grid.memory_gb * 2**30) or None,
            max_retries=grid.retries,
            retry_exceptions=_retryable(),
        )
        import torch

        tracking = os.environ.get("MLFLOW_TRACKING_URI")
        args = (data, model)
        # torch's thread count changes the order of its sums: each run uses the count a
        # sequential `rls3 run` has here (Ray's workers would get one thread per reserved CPU)
        threads = torch.get_num_threads()
        paths = (str(results), str(datasets), tracking, threads, progress)
        refs: dict[str, Any] = {}
        for arm, seed in runs:
            sac = refs.get(_key("sac", seed)) if arm in BUDGET_ARMS else None
            refs[_key(arm, seed)] = task.remote(*args, arm, seed, *paths, sac)
        pending = list(refs.values())
        shown = ""
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_seconds)
            view = _format(runs, ray.get(progress.snapshot.remote()))
            if echo and view != shown:
                print(view, flush=True)
                shown = view
        snapshot = ray.get(progress.snapshot.remote())
        for key, ref in refs.items():
            attempts = snapshot.get(key, {}).get("attempts", 0)
            try:
                summary = ray.get(ref)
            except ray.exceptions.RayError as err:
                raise GridError(
                    f"{model} {key} failed after {attempts} attempt(s) (grid.retries = "
                    f"{grid.retries}): {err}; its checkpoint is kept, run the grid again to resume"
                ) from err
            report.runs[key] = {"attempts": attempts, "summary": summary}
    finally:
        ray.shutdown()
    report.wall_seconds = round(time.perf_counter() - start, 1)
    atomic_write_json(results / "grid" / f"{model}.json", report.__dict__)
    return report


def _retryable() -> list[type[BaseException]]:
    """Application errors worth a retry: a Unity player that stopped (its run resumes)."""
    from benchmark.sim.unity_contract import UnityBackendError

    return [UnityBackendError]


def format_report(report: GridReport) -> str:
    lines = [
        f"{report.model} grid ({report.profile} profile, {report.engine} engine): "
        f"{len(report.runs)} runs in {report.wall_seconds:.1f} s"
    ]
    for key, record in report.runs.items():
        s = record["summary"]
        lines.append(
            f"  {key:<18} {s['iterations']} iterations, {s['generated_samples']} generated "
            f"samples ({s['stopped']}); test metric {s['initial_test_metric']:.3f} -> "
            f"{s['final_test_metric']:.3f}; attempts {record['attempts']}"
        )
    return "\n".join(lines)
