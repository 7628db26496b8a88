"""The ``rls3`` command line: one command per pipeline stage.

Each group of commands lives in its own ``_add_*`` function; commands import their modules
lazily so that ``rls3 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark import layout
from benchmark.config import ARMS, BACKENDS
from benchmark.families import MODELS, family
from benchmark.grid import ENGINES
from benchmark.slots import unused


def _add_scene_commands(sub: argparse._SubParsersAction) -> None:
    scene = sub.add_parser("scene", help="inspect the simulator's scenes")
    scene_sub = scene.add_subparsers(dest="scene_command", required=True)
    prev = scene_sub.add_parser("preview", help="write a PNG of a scene with three objects")
    prev.add_argument("--scene", required=True, help="scene name, e.g. kitchen")
    prev.add_argument("--out", required=True, type=Path, help="PNG file to write")
    prev.add_argument("--size", type=int, default=256, help="image side, px")
    prev.add_argument("--camera", type=int, default=0, help="camera pose index")
    prev.add_argument("--seed", type=int, default=0, help="seed of the object placement")
    prev.set_defaults(func=_scene_preview)
    lst = scene_sub.add_parser("list", help="list the scenes by environment")
    lst.set_defaults(func=_scene_list)


def _scene_preview(args: argparse.Namespace) -> int:
    from benchmark.sim.preview import write_preview

    out = write_preview(args.scene, args.out, size=args.size, camera=args.camera, seed=args.seed)
    print(f"wrote {out}")
    return 0


def _scene_list(args: argparse.Namespace) -> int:
    from benchmark.sim.scenes import ENVIRONMENTS, environment_scenes

    for env in ENVIRONMENTS:
        print(f"{env}: {', '.join(s.name for s in environment_scenes(env))}")
    return 0


def _add_perf_commands(sub: argparse._SubParsersAction) -> None:
    perf = sub.add_parser("perf", help="speed benchmarks, each a ratio measured in one run")
    perf_sub = perf.add_subparsers(dest="perf_command", required=True)
    sim = perf_sub.add_parser(
        "sim", help="valid samples/s of the env against bare getCameraImage, at 64 and 224 px"
    )
    sim.add_argument("--samples", type=int, default=60, help="valid samples per size and round")
    sim.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="alternating env/bare rounds (short rounds cancel drift)",
    )
    sim.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="image sizes, px")
    sim.add_argument("--environment", default="train", choices=["train", "test"])
    sim.add_argument(
        "--backend",
        default="embedded",
        choices=BACKENDS,
        help="embedded: the env against bare renders; unity: samples/s over the ML-Agents "
        "protocol against in process, on the same seed and actions",
    )
    sim.add_argument(
        "--build",
        default="unity_build/RLS3Embedded.x86_64",
        help="the player the unity backend launches (default: the embedded player)",
    )
    sim.set_defaults(func=_perf_sim)
    _add_perf_vlm_command(perf_sub)
    speed = perf_sub.add_parser(
        "speed",
        help="this machine's speed now: two fixed workloads shaped like the bench's costs (ms a "
        "step; `make bench` records one at its start and end in bench.json)",
    )
    speed.add_argument("--threads", type=int, default=1, help="torch threads (a bench run: 1)")
    speed.add_argument("--rounds", type=int, default=15, help="timed blocks; the median is kept")
    speed.set_defaults(func=_perf_speed)
    loop = perf_sub.add_parser("loop", help="one iteration's wall time split by phase")
    _params_arguments(loop)
    loop.add_argument("--model", default="clip", choices=MODELS)
    loop.add_argument("--seed", type=int, default=0)
    loop.add_argument("--arm", default="sac", choices=ARMS, help="the arm whose iteration is timed")
    loop.add_argument("--results", type=Path, default=layout.RESULTS)
    loop.add_argument("--datasets", type=Path, default=layout.DATASETS)
    loop.set_defaults(func=_perf_loop)
    gpu = perf_sub.add_parser(
        "gpu",
        help="the paper's scale on a CUDA GPU in one run (< 8 min): ViT-B-32 and a 3B "
        "PaliGemma against their bare forward/backward, and one paper-profile iteration",
    )
    gpu.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    gpu.add_argument(
        "--out", type=Path, default=Path("results/perf/gpu.json"), help="JSON file to write"
    )
    gpu.add_argument(
        "--parts",
        nargs="+",
        default=[*MODELS, "loop"],
        choices=[*MODELS, "loop"],
    )
    gpu.add_argument(
        "--small",
        action="store_true",
        help="the same code at test sizes (a CPU check of the command; no GPU figures)",
    )
    gpu.set_defaults(func=_perf_gpu)


def _perf_sim(args: argparse.Namespace) -> int:
    from benchmark.perf import sim as perf

    if args.backend == "unity":
        over = [
            perf.measure_unity(size, args.samples, args.rounds, args.environment, build=args.build)
            for size in args.sizes
        ]
        print(perf.format_unity_perf(over))
        return 0
    results = [
        perf.measure(size, args.samples, args.rounds, args.environment) for size in args.sizes
    ]
    print(perf.format_sim_perf(results))
    return 0


def _perf_speed(args: argparse.Namespace) -> int:
    import json

    from benchmark.perf.speed import speed_sample

    print(json.dumps(speed_sample(args.threads, args.rounds)))
    return 0


def _perf_loop(args: argparse.Namespace) -> int:
    from benchmark.config import load_params
    from benchmark.perf.loop import format_loop_perf, perf_loop

    params = load_params(args.params, args.profile)
    report = perf_loop(
        params, args.model, args.seed, arm=args.arm, results=args.results, datasets=args.datasets
    )
    print(format_loop_perf(report))
    return 0


def _perf_gpu(args: argparse.Namespace) -> int:
    import torch

    from benchmark.perf.gpu import GpuPerfConfig, format_gpu_perf, run

    parts = tuple(args.parts)
    if args.small:
        config = GpuPerfConfig.small_run(parts)
    elif not torch.cuda.is_available():
        raise ValueError(
            "rls3 perf gpu needs a CUDA device (none is visible); --small runs the same code "
            "at test sizes on the CPU"
        )
    else:
        config = GpuPerfConfig(parts=parts)
    result = run(config, args.out, args.params)
    print(format_gpu_perf(result))
    print(f"wrote {args.out}")
    return 0


def _add_captions_commands(sub: argparse._SubParsersAction) -> None:
    """The ``captions`` group (spatial captions, spec section 4)."""
    captions = sub.add_parser("captions", help="spatial captions of simulator samples")
    captions_sub = captions.add_subparsers(dest="captions_command", required=True)
    stats = captions_sub.add_parser(
        "stats", help="distribution of spatial terms under a uniform random placement policy"
    )
    stats.add_argument("--environment", default="train", choices=["train", "test"])
    stats.add_argument("--samples", type=int, default=2000, help="valid samples to describe")
    stats.add_argument("--seed", type=int, default=0, help="seed of the env, policy and pairs")
    stats.add_argument(
        "--out", type=Path, default=Path("results/captions/stats.json"), help="JSON file to write"
    )
    stats.set_defaults(func=_captions_stats)


def _captions_stats(args: argparse.Namespace) -> int:
    from benchmark.captions import TERMS
    from benchmark.fileio import atomic_write_json
    from benchmark.sampling import caption_statistics

    result = caption_statistics(args.environment, args.samples, args.seed)
    n, steps = result["samples"], result["steps"]
    by_term, by_n = result["term_counts"], result["n_terms_counts"]
    out: Path = args.out
    atomic_write_json(out, result)

    width = max(len(t) for t in TERMS)
    print(f"{n} valid samples ({steps} steps), environment {args.environment}, seed {args.seed}")
    print(f"{'term':<{width}}  {'count':>6}  {'share':>6}")
    for t in TERMS:
        print(f"{t:<{width}}  {by_term[t]:>6}  {by_term[t] / n:>6.1%}")
    print(f"{'n_terms':<{width}}  {'count':>6}  {'share':>6}")
    for k, c in by_n.items():
        print(f"{k:<{width}}  {c:>6}  {c / n:>6.1%}")
    print(f"wrote {out}")
    return 0


def _add_vlm_commands(sub: argparse._SubParsersAction) -> None:
    """The VLM commands (``pretrain-vlm``, ``perf vlm``; spec section 5)."""
    pre = sub.add_parser(
        "pretrain-vlm",
        help="base-train a built-in VLM on object lists (no spatial terms); measure it",
    )
    _params_arguments(pre)
    pre.add_argument("--model", required=True, choices=MODELS)
    pre.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint directory (default results/vlm/MODEL/base)",
    )
    pre.add_argument(
        "--samples", type=int, default=None, help="train-environment samples (default: params)"
    )
    pre.add_argument(
        "--steps",
        type=int,
        default=None,
        help="epochs (clip) or optimizer steps (paligemma) (default: params)",
    )
    pre.add_argument(
        "--test-samples",
        type=int,
        default=None,
        help="test samples to measure on (default: params)",
    )
    pre.add_argument("--seed", type=int, default=None, help="default: params")
    pre.set_defaults(func=_pretrain_vlm)


def _pretrain_vlm(args: argparse.Namespace) -> int:
    import json

    from benchmark.config import load_params
    from benchmark.pretrain import base_model_stage, metrics_path

    params = load_params(args.params, args.profile)
    length = family(args.model).pretrain_length
    info = base_model_stage(
        params,
        args.model,
        args.out,
        samples=args.samples,
        test_samples=args.test_samples,
        seed=args.seed,
        **{length: args.steps},
    )
    if "record_seconds" in info:  # real weights: recorded, not trained
        w = info["weights"]
        print(
            f"profiles.{params.profile}.{args.model}.weights: recorded {w['path']} "
            f"({w['bytes'] / 1e9:.2f} GB, sha256 {w['sha256'][:16]}) in "
            f"{info['record_seconds']:.0f} s; no base training; wrote {info['checkpoint']}"
        )
        return 0
    print(json.dumps(info["test"], indent=2))
    print(f"base training took {info['train_seconds']:.0f} s")
    print(f"wrote {info['checkpoint']} and {metrics_path(Path(info['checkpoint']))}")
    return 0


def _add_perf_vlm_command(perf_sub: argparse._SubParsersAction) -> None:
    """``rls3 perf vlm`` (VLM throughput against the bare forward/backward)."""
    vlm = perf_sub.add_parser(
        "vlm", help="VLM evaluate/finetune samples/s against the bare model on the same batch"
    )
    vlm.add_argument("--model", required=True, choices=MODELS)
    vlm.add_argument("--batch", type=int, default=32, help="samples in the batch")
    vlm.add_argument("--rounds", type=int, default=3, help="alternating API/bare rounds")
    vlm.add_argument("--seed", type=int, default=0)
    vlm.set_defaults(func=_perf_vlm)


def _perf_vlm(args: argparse.Namespace) -> int:
    from benchmark.perf.vlm import format_vlm_perf, measure

    print(format_vlm_perf(measure(args.model, args.batch, args.rounds, args.seed)))
    return 0


def _add_probe_commands(sub: argparse._SubParsersAction) -> None:
    """Measurements of the models themselves (``probe learnability``; spec section 5)."""
    probe = sub.add_parser("probe", help="measurements of the built-in models themselves")
    probe_sub = probe.add_subparsers(dest="probe_command", required=True)
    learn = probe_sub.add_parser(
        "learnability",
        help="fine-tune the base model on random-placement samples; test metric before/after "
        "and an image-shuffled control",
    )
    _params_arguments(learn)
    learn.add_argument("--model", required=True, choices=MODELS)
    learn.add_argument(
        "--base", type=Path, default=None, help="base checkpoint (default results/vlm/MODEL/base)"
    )
    learn.add_argument("--datasets", type=Path, default=layout.DATASETS)
    learn.add_argument(
        "--out",
        type=Path,
        default=None,
        help="figures (default results/probe/MODEL/learnability.json)",
    )
    learn.add_argument("--samples", type=int, default=None, help="train samples (default: params)")
    learn.add_argument("--epochs", type=int, default=None, help="epochs (default: params)")
    learn.set_defaults(func=_probe_learnability)


def _probe_learnability(args: argparse.Namespace) -> int:
    from benchmark.config import load_params
    from benchmark.probe import format_result, probe_stage

    out = args.out or layout.probe(layout.RESULTS, args.model)
    result = probe_stage(
        load_params(args.params, args.profile),
        args.model,
        base=args.base or layout.base_model(layout.RESULTS, args.model),
        datasets=args.datasets,
        out=out,
        samples=args.samples,
        epochs=args.epochs,
    )
    print(format_result(result))
    print(f"wrote {out}")
    return 0


def _add_check_command(sub: argparse._SubParsersAction) -> None:
    """``rls3 check``: the profile's weights, device, MLflow store and disk, in seconds."""
    chk = sub.add_parser(
        "check",
        help="before any long stage: weights exist, load and fit; CUDA where needed; MLflow "
        "store writable; disk space",
    )
    _params_arguments(chk)
    chk.add_argument(
        "--yes",
        action="store_true",
        help="go ahead with a long CPU base training (RLS3_YES=1 does the same under dvc)",
    )
    chk.add_argument("--datasets", type=Path, default=layout.DATASETS)
    chk.add_argument("--results", type=Path, default=layout.RESULTS)
    chk.add_argument(
        "--write",
        type=Path,
        default=None,
        metavar="DIR",
        help="on success, write what the DVC stages depend on (the weights' identity)",
    )
    chk.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from benchmark.check import check, format_check, write
    from benchmark.config import load_params

    params = load_params(args.params, args.profile)
    report = check(params, datasets=args.datasets, results=args.results, yes=args.yes)
    print(format_check(report, params.profile))
    if report.failures:
        return 1
    if args.write is not None:
        write(report, args.write)
    return 0


def _params_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    parser.add_argument("--profile", default=None, help="profile to use instead of the file's")


def _add_loop_commands(sub: argparse._SubParsersAction) -> None:
    """The stages of the loop (spec sections 2 and 6)."""
    build = sub.add_parser("build-datasets", help="the fixed validation and test sets")
    _params_arguments(build)
    build.add_argument("--out", type=Path, default=layout.DATASETS, help="directory to write")
    build.set_defaults(func=_build_datasets)

    agent = sub.add_parser("pretrain-agent", help="SAC pre-training on the intrinsic reward")
    _params_arguments(agent)
    agent.add_argument("--seed", type=int, required=True)
    agent.add_argument("--out", type=Path, default=None, help="default results/agents/seedS")
    _seed_slot_argument(agent)
    agent.set_defaults(func=_pretrain_agent)

    run = sub.add_parser("run", help="one run of Algorithm 1: a model, an arm, a seed")
    _params_arguments(run)
    run.add_argument("--model", required=True, choices=MODELS)
    run.add_argument("--arm", required=True, choices=list(ARMS))
    run.add_argument("--seed", type=int, required=True)
    run.add_argument("--results", type=Path, default=layout.RESULTS)
    run.add_argument("--datasets", type=Path, default=layout.DATASETS)
    _seed_slot_argument(run)
    run.set_defaults(func=_run)


def _seed_slot_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed-slot",
        action="store_true",
        help="called by a dvc.yaml seed slot: if the profile uses fewer seeds, write a marker "
        "saying so instead of running",
    )


def _skip_slot(out: Path, seed: int, seeds: int, profile: str, what: dict[str, object]) -> int:
    from benchmark.slots import mark_unused

    reason = mark_unused(out, seed, seeds, profile, what)
    print(f"seed slot {seed} unused ({reason}); wrote {out}")
    return 0


def _build_datasets(args: argparse.Namespace) -> int:
    from benchmark.config import load_params
    from benchmark.datasets import build_datasets

    for ds in build_datasets(load_params(args.params, args.profile).active, args.out):
        print(f"wrote {args.out / ds.name}: {len(ds.samples)} samples, content hash "
              f"{ds.content_hash[:16]}")  # fmt: skip
    return 0


def _pretrain_agent(args: argparse.Namespace) -> int:
    from benchmark.config import load_params

    params = load_params(args.params, args.profile)
    p = params.active
    out = args.out or layout.agent(layout.RESULTS, args.seed)
    seeds = p.agent_seeds
    if args.seed_slot and unused(args.seed, seeds):
        return _skip_slot(out, args.seed, seeds, params.profile, {"agent": "sac"})
    from benchmark.agents import pretrain_agent

    report, made = pretrain_agent(p, args.seed, out)
    if not made:
        print(f"SAC seed {args.seed}: {out} holds the agent of these inputs; nothing to do")
        return 0
    print(
        f"SAC seed {args.seed}: {report.steps} steps in {report.seconds:.0f} s; valid rate "
        f"{report.valid_rate_before:.1%} (uniform random) -> {report.valid_rate_after:.1%}; "
        f"wrote {out}"
    )
    return 0


def _prepare_tracking(results: Path, model: str) -> None:
    """The MLflow store's tables and ``model``'s experiment, made by one process at a time: two
    `rls3 run` started at once on a new SQLite store race in MLflow's schema migrations ("Online
    migration expected to match one row"), and one of them dies. An exclusive lock on a file
    beside the store orders them; a tracking server (``MLFLOW_TRACKING_URI``) is left to itself."""
    import fcntl

    from benchmark.tracking import prepare_store, tracking_uri

    uri = tracking_uri(results)
    if not uri.startswith("sqlite:///"):
        prepare_store(uri, model)
        return
    store = Path(uri.removeprefix("sqlite:///"))
    with open(store.with_name(store.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        prepare_store(uri, model)


def _run(args: argparse.Namespace) -> int:
    from benchmark.config import load_params

    params = load_params(args.params, args.profile)
    seeds = params.active.model(args.model).seeds
    if args.seed_slot and unused(args.seed, seeds):  # before the loop's imports: a second, not five
        out = layout.run_dir(args.results, args.model, args.arm, args.seed)
        what = {"model": args.model, "arm": args.arm, "profile": params.profile}
        return _skip_slot(out, args.seed, seeds, params.profile, what)
    from benchmark.loop import run_from_params

    _prepare_tracking(args.results, args.model)
    summary = run_from_params(
        params, args.model, args.arm, args.seed, results=args.results, datasets=args.datasets
    )
    print(
        f"{args.model} {args.arm} seed {args.seed}: {summary['iterations']} iterations, "
        f"{summary['generated_samples']} generated samples ({summary['stopped']}); test metric "
        f"{summary['initial_test_metric']:.3f} -> {summary['final_test_metric']:.3f}"
    )
    return 0


def _add_external_commands(sub: argparse._SubParsersAction) -> None:
    """External evaluation sets (datasets/README.md, "External sets"): score, convert."""
    ev = sub.add_parser(
        "eval", help="score a checkpoint (a base model, a run's final model) on an external set"
    )
    _params_arguments(ev)
    ev.add_argument("--model", required=True, choices=MODELS)
    ev.add_argument(
        "--base",
        type=Path,
        required=True,
        help="the checkpoint: results/vlm/MODEL/base, or a run's RUN_DIR/checkpoint/vlm",
    )
    ev.add_argument("--set", required=True, help="an external set's name in datasets.external")
    ev.add_argument("--json", type=Path, default=None, help="also write the scores here")
    ev.set_defaults(func=_eval)

    conv = sub.add_parser(
        "convert-external",
        help="write a What'sUp or VSR layout in the benchmark's own (images + captions.jsonl)",
    )
    conv.add_argument("--format", required=True, choices=["whatsup", "vsr"])
    conv.add_argument("--path", required=True, help="the annotation or split file")
    conv.add_argument("--images", default=None, help="its image folder (default: the layout's)")
    conv.add_argument("--out", type=Path, required=True, help="the folder to write")
    conv.set_defaults(func=_convert_external)


def _eval(args: argparse.Namespace) -> int:
    from benchmark.config import load_params
    from benchmark.external import metric_name, read_external, score
    from benchmark.fileio import atomic_write_json
    from benchmark.provenance import torch_threads
    from benchmark.vlm import vlm_loader

    params = load_params(args.params, args.profile)
    p = params.active
    specs = {s.name: s for s in p.datasets.external}
    if args.set not in specs:
        raise ValueError(
            f"--set {args.set!r}: profiles.{params.profile}.datasets.external has no such set; "
            f"its sets: {sorted(specs)}"
        )
    external = read_external(specs[args.set])
    if not args.base.exists():
        raise FileNotFoundError(f"--base: no checkpoint at {args.base}")
    with torch_threads(p.threads):  # the loop's threads: the same sums as a run's scores
        vlm = vlm_loader(args.model, p.model(args.model).vlm_config(), 0)(args.base)
        scores = score(vlm, external, [vlm.fit_image(im) for im in external.images()])
    terms = ", ".join(f"{k.removeprefix('term/')} {v:.3f}" for k, v in scores.items() if "/" in k)
    print(
        f"{args.set}: {len(external.items)} items, {metric_name(args.model, external)}\n"
        f"  {args.model} at {args.base}: {scores['metric']:.4f}"
        + (f"\n  per term: {terms}" if terms else "")
    )
    if args.json is not None:
        atomic_write_json(
            args.json,
            {
                "set": args.set,
                "content_hash": external.content_hash,
                "items": len(external.items),
                "model": args.model,
                "checkpoint": str(args.base),
                "scores": scores,
            },
        )
    return 0


def _convert_external(args: argparse.Namespace) -> int:
    from benchmark.config import ExternalSetParams
    from benchmark.external import convert

    spec = ExternalSetParams(name="converted", path=args.path, format=args.format,
                             images=args.images)  # fmt: skip
    written = convert(spec, args.out)
    print(
        f"wrote {args.out}: {len(written.items)} items in the rls3 layout "
        f"({written.skipped} entries of the {args.format} file left out: no true caption of "
        f"the six terms); content hash {written.content_hash[:16]}"
    )
    return 0


def _add_grid_command(sub: argparse._SubParsersAction) -> None:
    """``rls3 grid`` (spec section 9, "Beyond one machine")."""
    grid = sub.add_parser(
        "grid", help="one model's (arm, seed) runs as Ray tasks, on this machine or a cluster"
    )
    _params_arguments(grid)
    grid.add_argument("--model", required=True, choices=MODELS)
    grid.add_argument(
        "--engine",
        default="local",
        choices=ENGINES,
        help="local: start a Ray instance here (default); ray: join a running cluster",
    )
    grid.add_argument("--address", default=None, help="the cluster (ray): HOST:PORT, or auto")
    grid.add_argument(
        "--insecure",
        action="store_true",
        help="ray: join a cluster that runs without token authentication (refused otherwise)",
    )
    grid.add_argument("--cpus", type=int, default=None, help="local: the instance's CPUs")
    grid.add_argument("--results", type=Path, default=layout.RESULTS)
    grid.add_argument("--datasets", type=Path, default=layout.DATASETS)
    grid.set_defaults(func=_grid)


def _grid(args: argparse.Namespace) -> int:
    from benchmark.grid import format_grid, run_grid_file

    report = run_grid_file(  # --engine ray: checks the cluster first (GridError: one line)
        args.params,
        args.model,
        profile=args.profile,
        engine=args.engine,
        address=args.address,
        insecure=args.insecure,
        results=args.results,
        datasets=args.datasets,
        num_cpus=args.cpus,
    )
    print(format_grid(report))
    print(f"wrote {Path(args.results) / 'grid' / (args.model + '.json')}")
    return 0


def _add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    """The report and ``bench`` (spec sections 1 and 8)."""
    report = sub.add_parser("report", help="the benchmark report of one model, from its runs")
    report.add_argument("--model", choices=MODELS, help="the model to report")
    report.add_argument(
        "--index",
        nargs="+",
        metavar="MODEL",
        help="instead: write results/report/REPORT.md summing up these models' reports",
    )
    report.add_argument("--results", type=Path, default=layout.RESULTS)
    report.add_argument(
        "--out", type=Path, default=None, help="default results/report/MODEL (or results/report)"
    )
    report.set_defaults(func=_report)

    bench = sub.add_parser("bench", help="one model, every arm, all seeds, then the report")
    bench.add_argument("--model", choices=MODELS, default="clip")
    bench.add_argument(
        "--yes", action="store_true", help="go ahead where `rls3 check` asks (a long CPU stage)"
    )
    bench.add_argument(
        "--engine",
        default="local",
        choices=["dvc", *ENGINES],
        help="local (default): the runs side by side on this machine by `rls3 grid`, then `dvc "
        "repro` records them; ray: the same on a cluster (docs/guide.md, 'Run on a cluster'); dvc: "
        "every stage by `dvc repro`, one run after another (the same files)",
    )
    bench.add_argument("--address", default=None, help="with --engine ray: the cluster")
    bench.add_argument(
        "--check-reference",
        action="store_true",
        help="run nothing: check the finished bench against the committed reference (byte "
        "identity on the same fingerprint, the same conclusions on another); exit 0 if it passes",
    )
    bench.add_argument(
        "--reference",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --check-reference: a directory holding the reference's run_files.json and "
        "comparison.json (default: results/report/MODEL as committed, from git's HEAD)",
    )
    bench.add_argument(
        "--results",
        type=Path,
        default=layout.RESULTS,
        help="with --check-reference: the finished bench's results directory",
    )
    bench.set_defaults(func=_bench)


def _report(args: argparse.Namespace) -> int:
    from benchmark.config import load_params
    from benchmark.report import write_index, write_report

    if args.index:
        path = write_index(args.out or layout.report(args.results), args.index)
    elif args.model:
        params = load_params()  # the equivalence margin: profiles.<profile>.<model>.margin
        path = write_report(
            args.results,
            args.model,
            args.out or layout.report(args.results, args.model),
            margin=params.active.model(args.model).margin,
            profile=params.profile,
            threads=params.active.threads,
        )
    else:
        raise ValueError("rls3 report needs --model MODEL or --index MODEL [MODEL ...]")
    print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    """``make bench``: that model's DVC stages (cached), then its report; timed."""
    if args.check_reference:
        from benchmark.reference import check, committed_reference, format_reference_check

        reference, comparison = committed_reference(args.model, args.reference)
        result = check(args.results, args.model, reference, comparison)
        print(format_reference_check(result, args.model))
        return 0 if result.passed else 1
    from benchmark.bench import bench

    return bench(args.model, args.engine, args.address, yes=args.yes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rls3", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scene_commands(sub)
    _add_perf_commands(sub)
    _add_captions_commands(sub)
    _add_check_command(sub)
    _add_vlm_commands(sub)
    _add_probe_commands(sub)
    _add_loop_commands(sub)
    _add_pipeline_commands(sub)
    _add_external_commands(sub)
    _add_grid_command(sub)
    return parser


INTERRUPTED = (
    "interrupted; what finished is kept (each run up to its last completed iteration): "
    "run the same command again to resume"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rls3`` console script."""
    from benchmark.grid import GridError
    from benchmark.paramreads import install_from_env
    from benchmark.sim.unity_contract import UnityBackendError

    install_from_env()  # RLS3_PARAMS_READS: record the params keys this command reads
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as err:  # bad input (ParamsError too): a clear message
        message = err.args[0] if err.args else str(err)
        print(f"rls3: error: {message}", file=sys.stderr)
        return 2
    except (UnityBackendError, GridError) as err:  # a player, a grid's run, a cluster refused
        print(f"rls3: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback from deep in Ray or torch
        print(f"rls3: {INTERRUPTED}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
