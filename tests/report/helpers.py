"""Hand-made runs for the report's tests: real RunLogs and run files, no report code mocked."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from benchmark.arms import arm_of
from benchmark.captions import TERMS, term_key
from benchmark.report import (
    RunLog,
    claims,
    compare,
)


def _log(
    arm: str,
    seed: int,
    tests: list[float],
    hardness: list[float] | None = None,
    stopped: str = "budget",
) -> RunLog:
    """A run with ``tests`` per iteration (0: the base model), 100 generated samples apart."""
    rows: list[dict[str, float]] = [
        {"generated_samples": 100.0 * i, "test/metric": t} for i, t in enumerate(tests)
    ]
    for row, h in zip(rows[1:], hardness or [], strict=False):
        row["hardness"] = h
    summary = {"valid_rate": 0.8, "iterations": len(tests) - 1, "stopped": stopped}
    return RunLog(arm, seed, summary, rows, [])


def _headline(runs: dict[str, list[RunLog]]) -> str:
    (claim, _, verdict), *_ = claims(runs, compare(runs))
    assert claim.startswith("RLS3 (SAC) reaches a higher test metric than random placement")
    return verdict


def _three_seeds(sac_gain: float, final_gain: float) -> dict[str, list[RunLog]]:
    """Three paired seeds; SAC leads random by about ``sac_gain`` mid-run, ``final_gain`` at the
    end (small per-seed jitter so that the intervals are not degenerate)."""
    runs: dict[str, list[RunLog]] = {"sac": [], "random": []}
    for seed, jitter in enumerate((0.0, 0.01, -0.01)):
        mid, end = 0.40 + jitter, 0.45 + jitter / 2
        runs["random"].append(_log("random", seed, [0.3, mid, end]))
        runs["sac"].append(_log("sac", seed, [0.3, mid + sac_gain, end + final_gain]))
    return runs


def _hardness_runs(spread: float) -> dict[str, list[RunLog]]:
    """Three seeds; SAC's hardness per iteration 1 + spread * seed, 2 + spread * seed."""
    return {
        "sac": [
            _log("sac", s, [0.3, 0.4, 0.5], hardness=[1.0 + spread * s, 2.0 + spread * s])
            for s in range(3)
        ],
        "random": [
            _log("random", s, [0.3, 0.4, 0.5], hardness=[0.5, float("nan")]) for s in range(3)
        ],
    }


def _claim_runs(sac_better: bool) -> dict[str, list[RunLog]]:
    """Three paired seeds with every column the claims read: per-term and per-number-of-terms
    test scores, validation, valid rate and iterations. ``sac_better``: SAC beats random on
    each; else the other way round."""
    runs: dict[str, list[RunLog]] = {"sac": [], "random": []}
    sign = 1.0 if sac_better else -1.0
    for seed, jitter in enumerate((0.0, 0.01, -0.01)):
        for arm in ("sac", "random"):
            gain = sign * (0.1 if arm == "sac" else -0.1)  # each term's change over the run
            rows = []
            for i, t in enumerate((0.30 + jitter, 0.40 + jitter, 0.45 + 2 * jitter)):
                row = {"generated_samples": 100.0 * i, "test/metric": t, "val/metric": t + 0.01}
                for k, term in enumerate(TERMS):
                    row[f"test/term/{term_key(term)}"] = 0.5 + (gain if i == 2 and k < 2 else 0)
                for n in (1, 2, 3):  # 1 term best when SAC is better, 3 terms best otherwise
                    row[f"test/n_terms/{n}"] = 0.5 + sign * 0.1 * (2 - n)
                rows.append(row)
            summary: dict[str, Any]
            if arm == "sac":
                summary = {"valid_rate": 0.5 + sign * 0.3 + jitter, "iterations": 10}
            else:  # 40% fewer iterations than SAC's 10, or 30% more
                summary = {"valid_rate": 0.5, "iterations": (6 if sac_better else 13) + seed % 2}
            summary["stopped"] = "early_stopping" if sac_better else "max_iterations"
            runs[arm].append(RunLog(arm, seed, summary, rows, []))
    return runs


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _with_batch_terms(run: RunLog, per_iteration: list[dict[str, int]], cumulative: bool) -> RunLog:
    total = dict.fromkeys(TERMS, 0)
    run.iterations[0].update({f"batch_terms_cum/{term_key(t)}": 0.0 for t in TERMS})
    for row, counts in zip(run.iterations[1:], per_iteration, strict=True):
        for t in TERMS:
            total[t] += counts.get(t, 0)
            row[f"batch_terms_cum/{term_key(t)}"] = float(total[t])
            if not cumulative:
                row[f"batch_terms/{term_key(t)}"] = float(counts.get(t, 0))
    return run


def _write_run(
    root: Path,
    arm: str,
    seed: int,
    gain: float,
    iterations: int = 4,
    stopped: str = "budget",
    noise: float = 0.0,
) -> None:
    """A finished clip run's files as ``rls3 run`` writes them (``iterations`` after the base),
    its test metric rising by 0.04 + ``gain`` per iteration (``noise``: added to each value but
    the base's), two episodes per iteration with the rewards of the arm's reward form (beta 10)."""
    d = root / "runs" / "clip" / arm / f"seed{seed}"
    d.mkdir(parents=True)
    summary = {
        "model": "clip",
        "arm": arm,
        "seed": seed,
        "profile": "test",
        "finished": True,
        "stopped": stopped,
        "iterations": iterations,
        "generated_samples": 200 * iterations,
        "valid_rate": 0.7,
        "seconds": 60.0,
        "k": 2,
        "finetune": {"lr": 0.001},
        "dataset_hashes": {"validation": "a" * 64, "test": "b" * 64},
    }
    (d / "summary.json").write_text(json.dumps(summary))
    wobble = [0.0] + [noise * ((7 * seed + 3 * i) % 5 - 2) / 2 for i in range(1, iterations + 1)]
    rows = []
    for i in range(iterations + 1):
        metric = 0.3 + i * (0.04 + gain) + 0.01 * seed * (i > 0) + wobble[i]
        row: dict[str, Any] = {
            "iteration": i,
            "generated_samples": 200 * i,
            "test/metric": metric,
            "test/control": 0.3 + 0.02 * i,  # text priors: half the random arm's rise
            "test/grounded_gain": metric - (0.3 + 0.02 * i),
            "val/metric": metric + 0.02,
            "hardness": "" if i == 0 else 1.0 + gain * 10 - 0.1 * i,
            "error_rate": "" if i == 0 else 0.5,
        }
        for n in (1, 2, 3):
            row[f"test/n_terms/{n}"] = metric - 0.05 * n
        for j, t in enumerate(TERMS):
            row[f"test/term/{term_key(t)}"] = metric + 0.01 * j
            row[f"batch_terms/{term_key(t)}"] = "" if i == 0 else j + 1
            row[f"batch_terms_cum/{term_key(t)}"] = i * (j + 1)
        rows.append(row)
    _write_csv(d / "metrics.csv", rows)
    losses = [
        {"finetune_step": s + 1, "iteration": s // 2 + 1, "loss": 1.0 / (s + 1) + 0.01 * seed}
        for s in range(2 * iterations)
    ]
    _write_csv(d / "finetune_loss.csv", losses)
    beta = 0.0 if arm_of(arm).reward == "none" else 10.0
    episodes = []
    for i in range(1, iterations + 1):
        for e in range(2):
            j1, j2 = 20.0 - 4 * e - seed, 2.0 + gain * 10 + e
            episodes.append(
                {"iteration": i, "episode": 2 * (i - 1) + e, "valid": 32, "j1": j1, "j2": j2}
                | {"extrinsic": beta * j2, "hardness": 1.0 + gain * 10, "error_rate": 0.5}
            )
    _write_csv(d / "episodes.csv", episodes)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# each arm's gain per iteration over the random arm's 0.04, in the hand-made five-arm runs
FIVE_ARM_GAINS = {
    "sac": 0.02,
    "random": 0.0,
    "sac-dense": 0.01,
    "sac-nofeedback": 0.015,
    "random-hardest": 0.005,
}


def _write_five_arms(root: Path, seeds: int) -> None:
    """Every arm's runs for seeds 0..seeds-1: the gains of ``FIVE_ARM_GAINS`` with a little
    per-seed noise; the sac runs stop early at 5 to 8 iterations, the others spend its budget."""
    for seed in range(seeds):
        stop = 5 + seed % 4
        for arm, gain in FIVE_ARM_GAINS.items():
            how = ("early_stopping" if seed % 3 else "max_iterations") if arm == "sac" else "budget"
            _write_run(root, arm, seed, gain, iterations=stop, stopped=how, noise=0.006)


def _shifted(differences: list[float]) -> dict[str, list[RunLog]]:
    """Paired sac and random runs, one seed per difference: sac's test metric is random's plus
    that difference at every iteration, so that its final-metric and AUC differences both equal
    it."""
    runs: dict[str, list[RunLog]] = {"sac": [], "random": []}
    for seed, d in enumerate(differences):
        base = [0.30 + 0.01 * seed, 0.40 + 0.02 * seed, 0.45 + 0.01 * seed]
        runs["random"].append(_log("random", seed, base))
        runs["sac"].append(_log("sac", seed, [t + d for t in base]))
    return runs
