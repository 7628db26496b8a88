"""``rls3 perf gpu``: the paper's scale on one CUDA GPU, measured in one prepared run.

Three parts, each a ratio and absolute figures from one run, written to a JSON file:

1. ``clip``: open_clip ViT-B-32, randomly initialised, at 224 px with bf16 autocast (the
   families' CUDA path): ``evaluate`` and one ``finetune`` step (the whole tower trains, as in
   the paper) in samples/s, against the bare forward and forward/backward/AdamW on the same
   tensors (``perf.vlm.time_paths``);
2. ``paligemma``: a PaliGemma with the real 3B configuration (SigLIP So400m/14 at 224 px, Gemma
   2B: ``vlm.paligemma.perf.PALIGEMMA_3B``), randomly initialised, fp32 weights and bf16
   autocast: greedy ``evaluate`` and one attention-only ``finetune`` step against the bare
   ``generate`` and step; its tokenizer is the built-in closed-vocabulary one (Gemma's is not
   shipped), so prompts are a few tokens shorter than with Gemma's;
3. ``loop``: one iteration of the ``paper`` profile (E = 20 episodes of T0 = 200 samples, K = 10
   epochs) on the sac arm with the ViT-B-32 above as its ``weights``, split by phase
   (``perf.loop.perf_loop``), rendered with PyBullet's EGL plugin where it loads
   (``RLS3_RENDERER``), else TinyRenderer. Its SAC is pre-trained for ``learning_starts`` + 1
   steps only: the phase times do not depend on how well it places.

``--small`` runs the same code at test sizes (ViT-B-32 at 32 px, a small PaliGemma, the smoke
profile) so that it is checked on a CPU; its figures say nothing about a GPU.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from benchmark import layout
from benchmark.families import MODELS
from benchmark.fileio import atomic_write_json

PARTS = (*MODELS, "loop")  # a part per family, then one loop iteration


@dataclasses.dataclass(frozen=True)
class GpuPerfConfig:
    """Sizes of one ``rls3 perf gpu`` run (each family's model and batch: its
    ``perf.gpu_model``)."""

    image_size: int = 224
    rounds: int = 3
    profile: str = "paper"
    small: bool = False  # test sizes: each family's small model, the smoke profile
    parts: tuple[str, ...] = PARTS

    @classmethod
    def small_run(cls, parts: tuple[str, ...] = PARTS) -> GpuPerfConfig:
        return cls(32, 1, "smoke", True, parts)


def _vlm_part(model: str, config: GpuPerfConfig, device: torch.device) -> dict[str, Any]:
    from benchmark.config import SimParams
    from benchmark.families import family
    from benchmark.perf.vlm import time_paths
    from benchmark.sampling import collect_samples

    start = time.perf_counter()
    vlm, batch = family(model).part("gpu_model")(config.small, config.image_size, device)
    build = time.perf_counter() - start
    sim = SimParams(image_size=config.image_size)  # a timing, not a profile's samples
    samples = collect_samples("train", batch, 0, sim=sim, t0=32)
    params = sum(p.numel() for p in vlm.model.parameters())
    perf = time_paths(model, samples, config.rounds, vlm)
    result = {
        **asdict(perf),
        "parameters": params,
        "build_seconds": round(build, 1),
        "evaluate_ratio": perf.eval_api / perf.eval_bare,
        "finetune_ratio": perf.finetune_api / perf.finetune_bare,
    }
    if device.type == "cuda":
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    del vlm
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def _renderer() -> str:
    """``egl`` where PyBullet's EGL plugin loads here, else ``tiny``; sets RLS3_RENDERER."""
    from benchmark.sim.world import RENDERER_ENV

    os.environ[RENDERER_ENV] = "egl"
    try:
        from benchmark.config import SimParams
        from benchmark.sampling import collect_samples

        collect_samples("train", 1, 0, sim=SimParams(image_size=32), t0=32)
    except RuntimeError:
        os.environ[RENDERER_ENV] = "tiny"
    return os.environ[RENDERER_ENV]


def _loop_part(config: GpuPerfConfig, params_file: Path) -> dict[str, Any]:
    """One iteration of the profile in a scratch directory; the environment restored after."""
    saved = {k: os.environ.get(k) for k in ("RLS3_RENDERER", "MLFLOW_TRACKING_URI")}
    try:
        return _timed_loop(config, params_file)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _timed_loop(config: GpuPerfConfig, params_file: Path) -> dict[str, Any]:
    from benchmark.agents import pretrain_sac
    from benchmark.config import load_params
    from benchmark.datasets import build_dataset
    from benchmark.perf.loop import perf_loop
    from benchmark.pretrain import record_weights
    from benchmark.sim.backends import profile_env_kwargs
    from benchmark.vlm.clip import ClipVLM, ClipVLMConfig

    renderer = _renderer()
    params = load_params(params_file, config.profile)
    p = params.active
    with tempfile.TemporaryDirectory(prefix="rls3-perf-gpu-") as tmp:
        scratch = Path(tmp)
        start = time.perf_counter()
        weights = ClipVLM.random("ViT-B-32", p.sim.image_size, ClipVLMConfig())
        weights.save(scratch / "weights" / "ViT-B-32")
        del weights
        record_weights(
            "clip", str(scratch / "weights" / "ViT-B-32"), None, layout.base_model(scratch, "clip")
        )
        for split, size in (("validation", p.datasets.validation), ("test", p.datasets.test)):
            seed = p.datasets.seed + (0 if split == "validation" else 1)
            build_dataset(split, size, seed, scratch / "datasets", sim=p.sim, t0=p.loop.t0)
        agent = dataclasses.replace(p.agent, pretrain_steps=p.agent.learning_starts + 1)
        env_kwargs = profile_env_kwargs(p.sim, p.loop.t0)
        pretrain_sac(agent, 0, layout.agent(scratch, 0), env_kwargs=env_kwargs, eval_steps=50)
        setup = time.perf_counter() - start
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{layout.mlflow_store(scratch)}"
        report = perf_loop(params, "clip", 0, results=scratch, datasets=scratch / "datasets")
    return {**report, "renderer": renderer, "setup_seconds": round(setup, 1)}


def run(
    config: GpuPerfConfig, out: Path, params_file: Path = Path("params.yaml")
) -> dict[str, Any]:
    """Every part of ``config``; the JSON written to ``out``. A part that fails is recorded with
    its error and the others still run."""
    from benchmark.reference import machine

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict[str, Any] = {
        "command": "rls3 perf gpu" + (" --small" if config.small else ""),
        "config": asdict(config),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "machine": machine(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    for part in config.parts:
        t0 = time.perf_counter()
        try:
            if part == "loop":
                result[part] = _loop_part(config, params_file)
            else:
                result[part] = _vlm_part(part, config, device)
        except (RuntimeError, ValueError, OSError) as err:  # out of memory, no EGL, ...
            result[part] = {"error": f"{type(err).__name__}: {err}"}
        result[part]["part_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_json(out, result)  # what has run so far survives a later failure
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out, result)
    return result


def format_gpu_perf(result: dict[str, Any]) -> str:
    """The figures as a few lines: samples/s and API/bare ratios, the loop's phases."""
    lines = [f"{result['command']}: device {result['device']}, {result.get('wall_seconds')} s"]
    for part in MODELS:
        r = result.get(part)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"{part}: {r['error']}")
            continue
        lines.append(
            f"{part} ({r['parameters'] / 1e6:.1f}M parameters, batch {r['batch']}): evaluate "
            f"{r['eval_api']:.1f} samples/s (bare {r['eval_bare']:.1f}, ratio "
            f"{r['evaluate_ratio']:.2f}); finetune {r['finetune_api']:.1f} samples/s (bare "
            f"{r['finetune_bare']:.1f}, ratio {r['finetune_ratio']:.2f})"
            + (f"; peak {r['max_memory_gib']:.1f} GiB" if "max_memory_gib" in r else "")
        )
    loop = result.get("loop")
    if loop is not None:
        if "error" in loop:
            lines.append(f"loop: {loop['error']}")
        else:
            from benchmark.perf.loop import format_loop_perf

            lines.append(f"loop (renderer {loop['renderer']}, set-up {loop['setup_seconds']} s):")
            lines.append(format_loop_perf(loop))
    return "\n".join(lines)


__all__ = ["GpuPerfConfig", "format_gpu_perf", "run"]
