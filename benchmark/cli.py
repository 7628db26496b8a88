"""The ``rls3`` command line: one command per pipeline stage.

Each group of commands lives in its own ``_add_*`` function; commands import their modules
lazily so that ``rls3 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


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
    sim.add_argument("--samples", type=int, default=300, help="valid samples per size and round")
    sim.add_argument("--rounds", type=int, default=3, help="alternating env/bare rounds")
    sim.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="image sizes, px")
    sim.add_argument("--environment", default="train", choices=["train", "test"])
    sim.set_defaults(func=_perf_sim)
    _add_perf_vlm_command(perf_sub)


def _perf_sim(args: argparse.Namespace) -> int:
    from benchmark.sim.perf import format_report, measure

    results = [measure(size, args.samples, args.rounds, args.environment) for size in args.sizes]
    print(format_report(results))
    return 0


def _add_captions_commands(sub: argparse._SubParsersAction) -> None:
    """The ``captions`` group (spatial captions, SPEC section 4)."""
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
    import json
    import os
    import tempfile

    import numpy as np

    from benchmark.captions import (
        TERMS,
        CaptionRecord,
        describe_sample,
        n_terms_counts,
        term_counts,
    )
    from benchmark.sim.env import PlacementEnv

    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    env = PlacementEnv(args.environment, t0=64, render_images=False)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    records: list[CaptionRecord] = []
    steps = 0
    try:
        while len(records) < args.samples:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            if info["valid"]:
                records.append(describe_sample(info["sample"], rng))
            if terminated or truncated:
                env.reset()
    finally:
        env.close()

    n = len(records)
    by_term, by_n = term_counts(records), n_terms_counts(records)
    result = {
        "environment": args.environment,
        "seed": args.seed,
        "samples": n,
        "steps": steps,
        "valid_rate": n / steps,
        "term_counts": by_term,
        "term_shares": {t: c / n for t, c in by_term.items()},  # share of samples with the term
        "n_terms_counts": {str(k): c for k, c in by_n.items()},
        "n_terms_shares": {str(k): c / n for k, c in by_n.items()},
    }
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    # A temp file in the same directory, then os.replace: readers never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

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
    """The VLM commands (``pretrain-vlm``, ``perf vlm``; SPEC section 5)."""


def _add_perf_vlm_command(perf_sub: argparse._SubParsersAction) -> None:
    """``rls3 perf vlm`` (VLM throughput against the bare forward/backward)."""


def _add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="one model, both arms, all seeds, then the report")
    bench.add_argument("--model", choices=["clip", "paligemma"], default="clip")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    print(
        f"rls3 bench --model {args.model}: not implemented yet. The simulator is ready "
        "(try `rls3 scene preview --scene kitchen --out kitchen.png`); the loop and the report "
        "arrive with the loop and pipeline issues."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rls3", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scene_commands(sub)
    _add_perf_commands(sub)
    _add_captions_commands(sub)
    _add_vlm_commands(sub)
    _add_pipeline_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rls3`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, KeyError, FileNotFoundError) as err:  # bad input: a clear message
        message = err.args[0] if err.args else str(err)
        print(f"rls3: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
