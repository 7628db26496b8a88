"""``rls3 perf loop``: the wall time of one iteration of Algorithm 1, split by phase (the
loop's own timers, ``loop.PHASES``), and the loop's overhead beside them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmark import layout
from benchmark.config import BUDGET_ARMS
from benchmark.fileio import atomic_write_json
from benchmark.loop import PHASES, RunConfig, open_run, read_inputs
from benchmark.provenance import torch_threads
from benchmark.vlm import vlm_loader


def perf_loop(
    params: Any,
    model: str,
    seed: int,
    *,
    arm: str = "sac",
    results: str | Path,
    datasets: str | Path,
) -> dict[str, Any]:
    """``rls3 perf loop``: the wall time of one iteration of ``arm`` split by phase.

    Runs in a scratch results directory that links the project's base model and agent, so the
    project's own runs are untouched; a budget arm gets a budget larger than one iteration.
    The starting evaluation (iteration 0) is not timed.
    """
    import tempfile

    results = Path(results).resolve()
    with (
        torch_threads(params.active.threads),  # as a run of the profile
        tempfile.TemporaryDirectory(prefix="rls3-perf-") as tmp,
    ):
        scratch = Path(tmp)
        for part in ("vlm", "agents"):
            if (results / part).exists():
                (scratch / part).symlink_to(results / part)
        if arm in BUDGET_ARMS:  # a budget no iteration reaches: the arm's whole iteration
            atomic_write_json(
                layout.run_dir(scratch, model, "sac", seed) / "summary.json",
                {"finished": True, "generated_samples": 10**9},
            )
        cfg = RunConfig(model, arm, seed, params.profile, params.active, scratch, Path(datasets))
        base = layout.base_model(scratch, model)
        if not base.exists():
            raise FileNotFoundError(f"no base {model} model at {layout.base_model(results, model)}")
        loader = vlm_loader(model, params.active.model(model).vlm_config(), seed)
        run = open_run(cfg, read_inputs(cfg, base, layout.agent(scratch, seed)), loader)
        run.begin()  # the starting point, iteration 0 (not timed)
        run.timers.seconds = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        try:
            run.iterate()
            wall = time.perf_counter() - start
            run.tracker.finish()
        finally:
            run.vec_env.close()
    phases = dict(run.timers.seconds)
    return {
        "wall": wall,
        "phases": phases,
        "overhead": wall - sum(phases.values()),
        "generated": run.state.generated,
        "arm": arm,
        "profile": params.profile,
        "model": model,
    }


def format_loop_perf(report: dict[str, Any]) -> str:
    """The split as a table; the target is loop overhead under 5% of the wall time."""
    wall = report["wall"]
    lines = [
        f"one {report['profile']} iteration, {report['model']}, {report['arm']} arm: {wall:.1f} s, "
        f"{report['generated']} generated samples",
        f"{'phase':<16} {'seconds':>8} {'share':>7}",
    ]
    for phase, seconds in report["phases"].items():
        lines.append(f"{phase:<16} {seconds:>8.2f} {seconds / wall:>7.1%}")
    share = report["overhead"] / wall
    verdict = "ok" if share < 0.05 else "OVER"
    lines.append(
        f"{'loop overhead':<16} {report['overhead']:>8.2f} {share:>7.1%}  target < 5%: {verdict}"
    )
    return "\n".join(lines)
