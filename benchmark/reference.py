"""What a bench's numbers depend on, and the check of a finished bench against a reference.

A run's bits are a function of its inputs (params, datasets, code) and of the machine's code
paths: on one machine base training and every run repeat byte for byte, while a CPU of another
vendor (other torch, MKL and oneDNN kernels) changes the base model and everything downstream,
not the conclusions. So each report records a *fingerprint* (the CPU, the instruction set torch
dispatches to, torch's thread count, the lock file, Python) and a digest of every run file
(``run_files.json``), and ``rls3 bench --check-reference`` compares a finished bench with the
committed one:

- the same fingerprint: every run file must be byte-identical; the first file and row that is not
  is named;
- another fingerprint: the conclusions are compared instead: whether each figure of the
  comparison table lies within the reference's 95% interval, and whether every verdict is the
  same. The check passes when every verdict is the same; the figures outside their interval are
  listed, not counted against it (two means of the same spread fall within each other's 95%
  interval only about 83% of the time).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import layout
from benchmark.arms import ARMS
from benchmark.comparison import Comparison, Estimate
from benchmark.fileio import atomic_write_json

RUN_FILES = ("metrics.csv", "episodes.csv", "finetune_loss.csv")  # deterministic, row by row
RUN_FILES_JSON = "run_files.json"
ROW_DIGEST_HEX = 8  # hex digits per row digest: enough to name the first row that differs
# environment variables that pin the CPU code paths of torch, MKL and oneDNN: part of the
# fingerprint when set
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
OUTCOMES = ("supported", "contradicted", "equivalent", "inconclusive", "partly")


def cpuinfo(key: str) -> str | None:
    """The first ``key`` line of /proc/cpuinfo (None where there is none)."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.split(":", 1)[0].strip() == key:
            return line.split(":", 1)[1].strip()
    return None


def machine() -> str:
    """The machine in words: CPU model and cores, memory, GPU if any."""
    cpu = cpuinfo("model name") or platform.processor() or platform.machine()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {gpu}; {platform.system()} {platform.release()}"


def fingerprint(threads: int, lock: Path = Path("requirements.lock")) -> dict[str, Any]:
    """What the bits of a run depend on beyond its inputs: the CPU (vendor and model), the
    instruction set torch dispatches to, torch's CPU threads per run, the lock file's SHA-256,
    Python's version, and any variable of ``CODE_PATH_VARIABLES`` that is set."""
    import torch

    return {
        "cpu_vendor": cpuinfo("vendor_id") or platform.processor() or platform.machine(),
        "cpu_model": cpuinfo("model name") or platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": threads,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
        "python": platform.python_version(),
        "code_paths": {k: os.environ[k] for k in CODE_PATH_VARIABLES if k in os.environ},
    }


def format_fingerprint(fp: Mapping[str, Any]) -> str:
    """A fingerprint in one line of words."""
    lock = str(fp.get("lock_sha256") or "none")[:12]
    pinned = ", ".join(f"{k}={v}" for k, v in (fp.get("code_paths") or {}).items())
    return (
        f"{fp.get('cpu_vendor')} {fp.get('cpu_model')}, torch CPU capability "
        f"{fp.get('cpu_capability')}, {fp.get('threads')} torch thread(s) per run, "
        f"requirements.lock {lock}, Python {fp.get('python')}"
        + (f", pinned code paths {pinned}" if pinned else "")
    )


def _row_digests(data: bytes) -> str:
    """One ``ROW_DIGEST_HEX``-digit digest per line of ``data`` (with its line end),
    concatenated."""
    return "".join(
        hashlib.blake2b(line, digest_size=ROW_DIGEST_HEX // 2).hexdigest()
        for line in data.splitlines(keepends=True)
    )


def bench_files(results: Path, model: str) -> Iterator[Path]:
    """The files whose bytes a bench of ``model`` fixes, in a stable order: the base model's
    files, then every run file of every arm and seed."""
    base = layout.base_model(results, model)
    if base.is_dir():
        yield from sorted(p for p in base.rglob("*") if p.is_file())
    for arm in ARMS:
        arm_dir = layout.arm_runs(results, model, arm)
        seeds = sorted(
            (int(d.name.removeprefix("seed")), d)
            for d in arm_dir.glob("seed*")
            if d.name.removeprefix("seed").isdigit()
        )
        for _, run in seeds:
            for name in RUN_FILES:
                if (run / name).is_file():
                    yield run / name


def digests(results: Path, model: str) -> dict[str, dict[str, str | None]]:
    """Every file of ``bench_files`` (path relative to ``results``): its SHA-256 and, for text
    files, one short digest per row."""
    out: dict[str, dict[str, str | None]] = {}
    for path in bench_files(results, model):
        data = path.read_bytes()
        text = path.suffix in (".csv", ".json", ".jsonl")
        out[path.relative_to(results).as_posix()] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": _row_digests(data) if text else None,
        }
    return out


def write_run_files(results: Path, model: str, out: Path, fp: Mapping[str, Any]) -> Path:
    """``run_files.json`` in ``out``: the fingerprint ``fp`` of the machine that made the bench
    and the digests of its files (the reference a later bench is checked against)."""
    path = out / RUN_FILES_JSON
    atomic_write_json(path, {"fingerprint": dict(fp), "files": digests(results, model)})
    return path


# ---------------------------------------------------------------------------------- the check
@dataclass
class CheckResult:
    """The outcome of a check and what it found, line by line."""

    passed: bool
    mode: str  # "bytes" or "conclusions"
    lines: list[str] = field(default_factory=list)


def first_difference(
    reference: Mapping[str, Mapping[str, str | None]],
    fresh: Mapping[str, Mapping[str, str | None]],
) -> str | None:
    """The first file (in the reference's order) whose bytes differ, and its first row that
    differs, in words; None when every file is identical and none is missing or extra."""
    for name, ref in reference.items():
        got = fresh.get(name)
        if got is None:
            return f"{name}: missing (the reference has it)"
        if got["sha256"] == ref["sha256"]:
            continue
        ref_rows, got_rows = _split_rows(ref["rows"]), _split_rows(got["rows"])
        if ref_rows is None or got_rows is None:
            return f"{name}: its bytes differ"
        for row, (a, b) in enumerate(zip(ref_rows, got_rows, strict=False), start=1):
            if a != b:
                return f"{name}: line {row} differs (the first that does)"
        return (
            f"{name}: {len(got_rows)} lines where the reference has {len(ref_rows)} "
            f"(the first {min(len(ref_rows), len(got_rows))} are identical)"
        )
    extra = sorted(set(fresh) - set(reference))
    if extra:
        return f"{extra[0]}: not in the reference ({len(extra)} such file(s))"
    return None


def _split_rows(rows: str | None) -> list[str] | None:
    if rows is None:
        return None
    return [rows[i : i + ROW_DIGEST_HEX] for i in range(0, len(rows), ROW_DIGEST_HEX)]


def outcome(verdict: str) -> str:
    """A verdict's outcome word ("supported", ...), without its n and reasons."""
    word = verdict.strip().split(" ", 1)[0].strip("(;,").lower()
    return word if word in OUTCOMES else verdict


def verdicts(comparison: Comparison) -> dict[str, str]:
    """Every verdict of a comparison.json by a stable name: the paper's claims, the
    decomposition and the per-term and by-number-of-terms verdicts."""
    out: dict[str, str] = {}
    for claim in comparison.claims or []:
        out[f"claim: {claim.claim}"] = claim.verdict
    for row in comparison.decomposition or []:
        out[f"decomposition: {row.effect} ({row.difference})"] = row.verdict
    if comparison.term_verdicts is not None:
        for by, table in comparison.term_verdicts.to_json().items():
            for key, verdict in table.items():
                out[f"sac - random {by}: {key}"] = verdict
    return out


def figures(comparison: Comparison) -> dict[str, Estimate]:
    """Every figure of the comparison table with an interval, by a stable name: each arm's
    statistics, then each paired difference."""
    out: dict[str, Estimate] = {}
    for arm, data in comparison.arms.items():
        for stat, value in data.stats.items():
            out[f"{arm}: {stat}"] = value
    for pair, stats in comparison.differences.items():
        for stat, difference in stats.items():
            out[f"{pair}: {stat}"] = difference
    return out


def compare_conclusions(reference: Comparison, fresh: Comparison) -> CheckResult:
    """Each figure of the fresh comparison against the reference's interval, and each verdict
    against the reference's; passes when every verdict is the same."""
    lines: list[str] = []
    ref_figs, got_figs = figures(reference), figures(fresh)
    inside = outside = 0
    for name, ref in ref_figs.items():
        got = got_figs.get(name)
        low, high = ref.ci_low, ref.ci_high
        mean = np.nan if got is None else got.mean
        if not np.isfinite([low, high, mean]).all():
            continue  # no interval (one seed, never reached) or not measured here
        if low <= mean <= high:
            inside += 1
        else:
            outside += 1
            lines.append(
                f"  outside: {name} = {mean:.4g}, reference {ref.mean:.4g} [{low:.4g}, {high:.4g}]"
            )
    lines.insert(
        0,
        f"figures: {inside} of {inside + outside} within the reference's 95% interval"
        + (f"; {outside} outside:" if outside else ""),
    )
    ref_v, got_v = verdicts(reference), verdicts(fresh)
    changed = []
    for name, verdict in ref_v.items():
        here = got_v.get(name)
        if here is None or outcome(here) != outcome(verdict):
            changed.append(f"  {name}: reference {outcome(verdict)}, here {here or 'absent'}")
    lines.append(
        f"verdicts: {len(ref_v) - len(changed)} of {len(ref_v)} the same"
        + (f"; {len(changed)} differ:" if changed else "")
    )
    lines += changed
    return CheckResult(passed=not changed and bool(ref_v), mode="conclusions", lines=lines)


def check(
    results: Path, model: str, reference: Mapping[str, Any], reference_comparison: Comparison
) -> CheckResult:
    """A finished bench of ``model`` under ``results`` against a reference (its
    ``run_files.json`` and ``comparison.json``): byte identity of the files on disk where the
    fingerprints are equal, else the conclusions of the bench's report, which must have been
    made from the runs on disk."""
    report = layout.report(results, model)
    made = report / RUN_FILES_JSON
    if not made.is_file() or not (report / "comparison.json").is_file():
        raise FileNotFoundError(
            f"no finished bench of {model} here ({made} is missing): run "
            f"`make bench MODEL={model}` first"
        )
    fresh = json.loads(made.read_text())
    on_disk = digests(results, model)
    if not any(name.startswith("runs/") for name in on_disk):
        raise FileNotFoundError(
            f"no runs of {model} under {results / 'runs' / model}: run `make bench MODEL={model}`"
        )
    ref_fp, here_fp = reference["fingerprint"], fresh["fingerprint"]
    head = [
        f"reference: {format_fingerprint(ref_fp)}",
        f"this bench: {format_fingerprint(here_fp)}",
    ]
    if ref_fp == here_fp:
        diff = first_difference(reference["files"], on_disk)
        if diff is None:
            n = len(reference["files"])
            line = f"same fingerprint: all {n} files byte-identical to the reference"
            return CheckResult(True, "bytes", [*head, line])
        return CheckResult(False, "bytes", [*head, f"same fingerprint, but a file differs: {diff}"])
    stale = first_difference(fresh["files"], on_disk)
    if stale is not None:
        raise ValueError(
            f"the report of {model} was not made from the runs on disk ({stale}): run "
            f"`dvc repro report@{model}` first"
        )
    differ = [k for k in sorted(set(ref_fp) | set(here_fp)) if ref_fp.get(k) != here_fp.get(k)]
    head.append(
        f"another fingerprint ({', '.join(differ)} differ(s)): the bits are not expected to "
        "match; comparing the conclusions"
    )
    made_comparison = Comparison.from_json(json.loads((report / "comparison.json").read_text()))
    result = compare_conclusions(reference_comparison, made_comparison)
    result.lines[:0] = head
    return result


def committed_reference(
    model: str, directory: Path | None = None
) -> tuple[dict[str, Any], Comparison]:
    """The reference of ``model``: its ``run_files.json`` and ``comparison.json`` from
    ``directory``, or by default as committed (git's HEAD, not the working tree, which a fresh
    bench has overwritten)."""
    names = (RUN_FILES_JSON, "comparison.json")
    if directory is not None:
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{directory} holds no {' or '.join(missing)}")
        run_files, comparison = (json.loads((directory / n).read_text()) for n in names)
        return run_files, Comparison.from_json(comparison)
    out = []
    for name in names:
        spec = f"HEAD:results/report/{model}/{name}"
        shown = subprocess.run(["git", "show", spec], capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            raise FileNotFoundError(
                f"no committed reference {spec} ({shown.stderr.strip() or 'git failed'}); "
                "give one with --reference DIR"
            )
        out.append(json.loads(shown.stdout))
    return out[0], Comparison.from_json(out[1])


def format_reference_check(result: CheckResult, model: str) -> str:
    """The check's lines and its outcome."""
    what = "byte identity" if result.mode == "bytes" else "same conclusions"
    word = "passed" if result.passed else "FAILED"
    return "\n".join([*result.lines, f"check of {model} against the reference ({what}): {word}"])
