"""``rls3 check``: what would make a long stage fail, found in seconds before any starts.

Run by ``make bench`` (through ``dvc repro``) and as the pipeline's first DVC stage; each stage
that trains or runs waits for it. It checks the active profile (spec sections 5 and 7):

- each model's ``weights``: the path exists, is the family's, its weights are safetensors (a
  pickle is refused), they load, and the checkpoint's image size is ``sim.image_size``;
- ``device: cuda``: a CUDA device is visible;
- ``sim.backend: unity``: the player at ``sim.unity.build`` is there and executable, and a fixed
  ``sim.unity.base_port`` is free;
- the MLflow store (``MLFLOW_TRACKING_URI``, else ``results/mlflow.db``) is writable;
- there is disk space for the datasets;
- each external set (``datasets.external``) reads: every item and image is there (a bad file is
  one line naming it and the line);
- a built-in model base-trained above the bench's 64 px on a CPU: how long that is likely to
  take, measured here, and a go-ahead (``--yes``, or ``RLS3_YES=1`` under ``dvc repro``).

Each failure is one line naming the key and the fix. ``--write DIR`` (the DVC stage) writes what
later stages depend on: ``MODEL.json``, the identity of each model's weights (path and each
file's size and modification time, so that the ``base_model`` stage records a changed
checkpoint again) and ``passed.json``, whose content does not change between runs (stages wait
on it without re-running when it is rewritten); on the unity backend it holds the player's
identity (path, size, modification time), so that a new player re-runs the stages that ran it.
``external.json`` holds each external set's name, layout and content hash ({} for none): the run
stages depend on it, so a changed set re-runs the runs that score it and nothing else.
``run_code.json`` and ``agent_code.json`` hold the digest of the code a run and an agent record
(``provenance.CODE_PATHS``, ``AGENT_CODE_PATHS``) and each of its files' hashes: the run and
agent stages' one code dep, so a changed module re-runs them, and the lock stays small.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from benchmark import layout
from benchmark.config import Params, Profile
from benchmark.families import MODELS
from benchmark.fileio import atomic_write_json
from benchmark.provenance import AGENT_CODE_PATHS, CODE_PATHS, code_manifest

YES_ENV = "RLS3_YES"
CPU_TUNED_SIZE = 64  # px: the size the CPU profiles (bench) were tuned and timed at
BYTES_PER_SAMPLE_EXTRA = 4096  # a sample's metadata and captions, generously
ESTIMATE_SAMPLES = 4  # samples rendered and passed through the model to time base training


@dataclass
class Report:
    """The check's findings: failures (one line each) and what passed."""

    failures: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    weights: dict[str, Any] = field(default_factory=dict)  # model -> identity or None
    unity_build: dict[str, Any] | None = None  # the Unity player's identity, on that backend
    external: dict[str, Any] = field(default_factory=dict)  # set name -> layout and content hash

    def fail(self, key: str, message: str) -> None:
        self.failures.append(f"{key}: {message}")

    def ok(self, key: str, message: str) -> None:
        self.passed.append(f"{key}: {message}")


def check(
    params: Params,
    *,
    datasets: Path = layout.DATASETS,
    results: Path = layout.RESULTS,
    yes: bool = False,
) -> Report:
    """Every check of the active profile; nothing is written."""
    report = Report()
    profile, name = params.active, params.profile
    for model in MODELS:
        _check_weights(report, profile, name, model)
    _check_device(report, profile, name)
    _check_unity(report, profile, name)
    _check_mlflow(report, results)
    _check_disk(report, profile, name, datasets)
    _check_cpu_base_training(report, profile, name, yes)
    _check_external(report, profile, name)
    return report


def _check_external(report: Report, profile: Profile, name: str) -> None:
    from benchmark.external import ExternalSetError, read_external

    for spec in profile.datasets.external:
        key = f"profiles.{name}.datasets.external[{spec.name}]"
        try:
            external = read_external(spec)
        except ExternalSetError as err:
            report.fail(key, str(err))
            continue
        report.external[spec.name] = {
            "path": spec.path,
            "format": spec.format,
            "items": len(external.items),
            "content_hash": external.content_hash,
        }
        report.ok(key, f"{len(external.items)} items at {spec.path} ({spec.format})")


def _check_weights(report: Report, profile: Profile, name: str, model: str) -> None:
    from benchmark.vlm.pointer import WeightsError
    from benchmark.vlm.weights import inspect

    key = f"profiles.{name}.{model}.weights"
    w = profile.model(model).weights
    if w is None:
        report.weights[model] = None
        report.ok(key, "null: the built-in model, base-trained by the base_model stage")
        return
    try:
        ckpt = inspect(model, w.path, w.arch)
    except WeightsError as err:
        report.fail(key, str(err))
        return
    report.weights[model] = ckpt.identity()
    size = sum(f.stat().st_size for f in ckpt.files)
    report.ok(key, f"{ckpt.path} ({len(ckpt.files)} files, {size / 1e9:.2f} GB) loads")
    if ckpt.image_size != profile.sim.image_size:
        report.fail(
            f"profiles.{name}.sim.image_size",
            f"{profile.sim.image_size} px, but the {model} checkpoint at {ckpt.path} takes "
            f"{ckpt.image_size} px: set sim.image_size: {ckpt.image_size}",
        )


def _check_device(report: Report, profile: Profile, name: str) -> None:
    import torch

    key = f"profiles.{name}.device"
    if profile.device != "cuda":
        where = "CUDA" if torch.cuda.is_available() else "the CPU (no CUDA device visible)"
        report.ok(key, f"auto: {where}")
    elif torch.cuda.is_available():
        report.ok(key, f"cuda: {torch.cuda.get_device_name(0)}")
    else:
        report.fail(
            key,
            "cuda, but no CUDA device is visible (torch.cuda.is_available() is False): run on a "
            'machine with a GPU (docs/guide.md, "GPU"), or choose a CPU profile (profile: bench)',
        )


def _check_unity(report: Report, profile: Profile, name: str) -> None:
    """With ``sim.backend: unity``: the player is there and can run, its port is free."""
    key = f"profiles.{name}.sim"
    if profile.sim.backend != "unity":
        report.ok(f"{key}.backend", f"{profile.sim.backend}: PyBullet in process")
        return
    from benchmark.sim.unity import port_is_free

    build = Path(profile.sim.unity.build)
    if not build.is_file():
        report.fail(
            f"{key}.unity.build",
            f"no Unity player at {build}: build one (unity_build/README.md) or point this key "
            f"at one; unity_build/RLS3Embedded.x86_64 serves the embedded scenes",
        )
    elif not os.access(build, os.X_OK):
        report.fail(f"{key}.unity.build", f"{build} is not executable: chmod +x it")
    else:
        report.ok(f"{key}.unity.build", f"{build} is there and executable")
        stat = build.stat()
        report.unity_build = {
            "path": str(build.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
    port = profile.sim.unity.base_port
    if port is not None and not port_is_free(port):
        report.fail(f"{key}.unity.base_port", f"port {port} is in use: choose another, or null")


def _writable_directory(directory: Path) -> str | None:
    """None when a file can be created in ``directory`` (made if missing), else why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".rls3-check-"):
            pass
    except OSError as err:
        return f"{directory} is not writable ({err.strerror or err})"
    return None


def _check_mlflow(report: Report, results: Path) -> None:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    key = "MLFLOW_TRACKING_URI" if uri else f"the MLflow store {layout.mlflow_store(results)}"
    if not uri:
        target = layout.mlflow_store(results)
        problem = _writable_directory(results)
        if problem is None and target.exists() and not os.access(target, os.W_OK):
            problem = f"{target} is read-only"
    else:
        parsed = urlparse(uri)
        if parsed.scheme in ("http", "https", "databricks"):
            problem, target = _reach_server(uri), Path(uri)
        elif parsed.scheme == "sqlite":
            # SQLAlchemy's form: sqlite:///relative.db (to the working directory), or
            # sqlite:////absolute/path.db
            db = Path(uri.removeprefix("sqlite:///").removeprefix("sqlite://"))
            problem, target = _writable_directory(db.parent), db
        else:  # a file store: a path or file:// URI
            directory = Path(parsed.path if parsed.scheme == "file" else uri)
            problem, target = _writable_directory(directory), directory
    if problem:
        fix = "set MLFLOW_TRACKING_URI to a writable store" if uri else "make results/ writable"
        report.fail(key, f"{problem}: {fix}")
    else:
        report.ok(key, f"{target} is writable")


def _reach_server(uri: str) -> str | None:
    """None when an MLflow tracking server answers at ``uri`` within a few seconds."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            if response.status == 200:
                return None
            return f"{uri} answered {response.status} to /health"
    except (urllib.error.URLError, OSError) as err:
        return f"no MLflow server answers at {uri} ({err})"


def _check_disk(report: Report, profile: Profile, name: str, datasets: Path) -> None:
    side = profile.sim.image_size
    n = profile.datasets.validation + profile.datasets.test
    need = n * (side * side * 3 + BYTES_PER_SAMPLE_EXTRA)  # raw pixels: PNGs take less
    where = datasets
    while not where.exists():
        where = where.parent if where != where.parent else Path(".")
    free = shutil.disk_usage(where).free
    key = f"profiles.{name}.datasets"
    if free < 2 * need:  # the sets, and room to spare for the runs' checkpoints and logs
        report.fail(
            key,
            f"{n} samples at {side} px need about {need / 1e9:.2f} GB at {datasets}, and twice "
            f"that is asked for; {free / 1e9:.2f} GB is free: free some space or lower "
            "datasets.validation / datasets.test",
        )
    else:
        report.ok(key, f"about {need / 1e6:.0f} MB needed, {free / 1e9:.1f} GB free")


def _check_cpu_base_training(report: Report, profile: Profile, name: str, yes: bool) -> None:
    import torch

    builtin = [m for m in MODELS if profile.model(m).weights is None]
    side = profile.sim.image_size
    if torch.cuda.is_available() or not builtin or side <= CPU_TUNED_SIZE:
        return
    minutes = {m: estimate_base_training(profile, m) / 60 for m in builtin}
    said = ", ".join(f"{m} about {math.ceil(v)} min" for m, v in minutes.items())
    key = f"profiles.{name}.sim.image_size"
    if yes or os.environ.get(YES_ENV) == "1":
        report.ok(key, f"{side} px on the CPU, go-ahead given: base training {said}")
    else:
        report.fail(
            key,
            f"{side} px with built-in models on the CPU: base training is likely to take "
            f"{said} (measured here on {ESTIMATE_SAMPLES} samples); rerun with --yes "
            f"({YES_ENV}=1 under dvc repro) to go ahead, or give real weights or a CUDA device",
        )


def estimate_base_training(profile: Profile, model: str) -> float:
    """Seconds that base-training the built-in ``model`` with the profile's block would take
    here: rendering measured on a few samples at the profile's image size, plus training
    measured as one fine-tuning step of the built-in model on them, per sample pass."""
    from benchmark.families import family
    from benchmark.sampling import collect_samples
    from benchmark.vlm import load_vlm

    config: Any = profile.model(model).pretrain
    start = time.perf_counter()
    samples = collect_samples("train", ESTIMATE_SAMPLES, 0, sim=profile.sim, t0=profile.loop.t0)
    render = (time.perf_counter() - start) / ESTIMATE_SAMPLES
    vlm = load_vlm(model)
    vlm.finetune(samples, 1)  # warm-up
    start = time.perf_counter()
    vlm.finetune(samples, 1)
    per_pass = (time.perf_counter() - start) / ESTIMATE_SAMPLES
    passes = family(model).part("base_training_passes")(config)
    return float(render * (config.samples + config.test_samples) + per_pass * passes)


def write(report: Report, out: Path) -> None:
    """The DVC stage's outputs (see the module's docstring)."""
    for model in MODELS:
        atomic_write_json(out / f"{model}.json", {"model": model, "weights": report.weights[model]})
    passed: dict[str, Any] = {"checks": "passed"}
    if report.unity_build is not None:  # a new player re-runs what the simulator made
        passed["unity_build"] = report.unity_build
    atomic_write_json(out / "passed.json", passed)
    atomic_write_json(out / "external.json", report.external)
    atomic_write_json(out / "run_code.json", code_manifest(paths=CODE_PATHS))
    atomic_write_json(out / "agent_code.json", code_manifest(paths=AGENT_CODE_PATHS))


def format_check(report: Report, profile: str) -> str:
    lines = [f"rls3 check --profile {profile}"]
    lines += [f"  ok    {line}" for line in report.passed]
    lines += [f"  FAIL  {line}" for line in report.failures]
    verdict = "failed" if report.failures else "passed"
    lines.append(f"rls3 check: {len(report.failures)} problem(s); {verdict}")
    return "\n".join(lines)


__all__ = ["Report", "check", "estimate_base_training", "format_check", "write"]
