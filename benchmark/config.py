"""The params schema: ``params.yaml`` holds profiles; one key, ``profile``, picks the active one.

Each block maps 1:1 onto a typed dataclass. Reading is strict: an unknown key, a missing key, a
value of the wrong type or out of range is a ``ParamsError`` that names the key path (e.g.
``profiles.bench.loop.eta``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
MODELS = ("clip", "paligemma")
ARMS = ("sac", "random", "sac-dense")
BUDGET_ARMS = ("random", "sac-dense")  # run on the sac run's budget (same model and seed)
BACKENDS = ("embedded", "unity")  # sim.backend (benchmark/sim/backends.py)
MAX_SEEDS = 5  # dvc.yaml has one stage per seed slot 0..MAX_SEEDS-1


class ParamsError(ValueError):
    """A params file or value that breaks the schema; the message names the key."""


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ParamsError(f"params: {key} = {value!r} is not allowed; expected {allowed}")


@dataclass(frozen=True)
class AgentParams:
    """SAC's knobs (params.yaml ``agent``)."""

    pretrain_steps: int = 5000  # P: intrinsic-only pre-training steps
    learning_rate: float = 2e-3  # fastest start (0.84 valid at 6k steps), but levels off there;
    # 3e-4 (the paper's) is slower and goes higher: 0.85 at 20k, 0.90 at 30k
    # (docs/research.md, "SAC")
    gamma: float = 0.0  # pre-training discount: feasibility is immediate (the loop has its own)
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1000  # uniform actions before the first update
    hidden: tuple[int, ...] = (256, 256)  # actor and critic hidden layers

    def __post_init__(self) -> None:
        rules = {
            "pretrain_steps": (self.pretrain_steps >= 0, "an int >= 0"),
            "learning_rate": (self.learning_rate > 0, "a number > 0"),
            "gamma": (0 <= self.gamma <= 1, "a number in [0, 1]"),
            "batch_size": (self.batch_size >= 1, "an int >= 1"),
            "buffer_size": (self.buffer_size >= 1, "an int >= 1"),
            "learning_starts": (self.learning_starts >= 0, "an int >= 0"),
            "hidden": (
                len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
                "a non-empty list of ints >= 1",
            ),
        }
        for name, (ok, allowed) in rules.items():
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r}; expected {allowed}")


@dataclass(frozen=True)
class UnityParams:
    """The ``unity`` backend's build and connection (unity_build/README.md)."""

    build: str = "unity_build/RLS3.x86_64"  # the player; unity_build/RLS3Embedded.x86_64 serves
    # the embedded scenes over the same protocol
    base_port: int | None = None  # the ML-Agents port (each further env in a process: +1);
    # null takes a free port
    timeout_s: int = 60  # how long to wait for the player to answer


@dataclass(frozen=True)
class SimParams:
    """The simulator (``PlacementEnv`` arguments, and which backend serves them)."""

    backend: str = "embedded"  # embedded (PyBullet, in process) or unity (mlagents-envs)
    unity: UnityParams = field(default_factory=UnityParams)  # read when backend is unity
    image_size: int = 64  # px
    swap_prob: float = 0.25
    scene_period: int = 4  # steps
    max_steps_factor: int = 8  # an episode is truncated at max_steps_factor * t0 steps


@dataclass(frozen=True)
class DatasetParams:
    """The fixed evaluation sets."""

    validation: int = 200  # samples from the train environment
    test: int = 300  # samples from the test environment
    seed: int = 2025


@dataclass(frozen=True)
class LoopParams:
    """Algorithm 1's knobs."""

    t0: int = 32  # T0: valid samples per episode
    eta: float = 0.5  # sampling rate of an episode's samples into the fine-tuning batch
    episodes: int = 4  # E: episodes per iteration
    beta: float = 10.0  # reward scale of J2 (eq. 4)
    gamma: float = 0.99  # SAC's discount inside the loop (pre-training has agent.gamma)
    max_iterations: int = 20  # hard cap (early stopping usually ends the sac arm first)
    validate_every: int = 0  # F, in K units (epochs or steps); 0: only at the iteration's end


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when validation has not improved by > min_delta for patience iterations."""

    patience: int = 5
    min_iterations: int = 10
    min_delta: float = 0.0


@dataclass(frozen=True)
class Weights:
    """Real pretrained weights of one model (SPEC section 5): a local path, never a hub name.

    In params.yaml: a path (``weights: /weights/paligemma-3b-pt-224``) or a mapping with the
    open_clip architecture of a bare ``.safetensors`` file (``{path: ..., arch: ViT-B-32}``).
    A relative path is relative to the repository root (where ``dvc repro`` runs).
    """

    path: str
    arch: str | None = None  # CLIP only: the open_clip architecture name


@dataclass(frozen=True)
class ModelParams:
    """One VLM family: its K, seeds, early stopping, and its fine-tuning/pre-training knobs."""

    k: int = 1  # K: epochs (CLIP) or steps (PaliGemma) of fine-tuning per iteration
    seeds: int = 2  # runs use seeds 0..seeds-1
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    finetune: dict[str, Any] = field(default_factory=dict)  # the family's VLM config fields
    pretrain: dict[str, Any] = field(default_factory=dict)  # the base-training config fields
    probe: dict[str, Any] = field(default_factory=dict)  # the learnability probe's fields
    # null: the built-in model, base-trained by the base_model stage; else real weights, which
    # that stage records instead of training (``vlm.weights``)
    weights: Weights | None = None


DEVICES = ("auto", "cuda")


@dataclass(frozen=True)
class GridParams:
    """What each run of ``rls3 grid`` asks of Ray (README, "Run on a cluster")."""

    cpus: float = 1.0  # CPU cores per run (torch uses as many threads)
    gpus: float = 0.0  # GPUs per run (a fraction shares one)
    memory_gb: float = 0.0  # memory Ray reserves per run; 0: none reserved
    retries: int = 3  # a run whose worker died (or whose Unity player stopped) is retried, resuming


@dataclass(frozen=True)
class Profile:
    sim: SimParams
    datasets: DatasetParams
    loop: LoopParams
    agent: AgentParams
    clip: ModelParams
    paligemma: ModelParams
    # auto: CUDA when visible, else the CPU; cuda: the profile needs a CUDA device (`rls3 check`
    # fails without one rather than start a paper-scale run on a CPU)
    device: str = "auto"
    grid: GridParams = field(default_factory=GridParams)  # `rls3 grid` on Ray (not DVC's path)

    def model(self, name: str) -> ModelParams:
        _check(name in MODELS, "model", name, f"one of {list(MODELS)}")
        return self.clip if name == "clip" else self.paligemma


@dataclass(frozen=True)
class Params:
    profile: str
    profiles: dict[str, Profile]

    @property
    def active(self) -> Profile:
        return self.profiles[self.profile]


_RULES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "sim.backend": (lambda v: v in BACKENDS, f"one of {list(BACKENDS)}"),
    "unity.build": (lambda v: v.strip() != "", "a path to the player executable"),
    "unity.base_port": (
        lambda v: v is None or 1024 <= v <= 65535,
        "null (a free port) or an int in [1024, 65535]",
    ),
    "unity.timeout_s": (lambda v: v >= 1, "an int >= 1"),
    "grid.cpus": (lambda v: v > 0, "a number > 0"),
    "grid.gpus": (lambda v: v >= 0, "a number >= 0"),
    "grid.memory_gb": (lambda v: v >= 0, "a number >= 0"),
    "grid.retries": (lambda v: v >= 0, "an int >= 0"),
    "sim.image_size": (lambda v: v >= 8, "an int >= 8"),
    "sim.swap_prob": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "sim.scene_period": (lambda v: v >= 1, "an int >= 1"),
    "sim.max_steps_factor": (lambda v: v >= 1, "an int >= 1"),
    "datasets.validation": (lambda v: v >= 1, "an int >= 1"),
    "datasets.test": (lambda v: v >= 1, "an int >= 1"),
    "loop.t0": (lambda v: v >= 1, "an int >= 1"),
    "loop.eta": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "loop.episodes": (lambda v: v >= 1, "an int >= 1"),
    "loop.beta": (lambda v: v >= 0, "a number >= 0"),
    "loop.gamma": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "loop.max_iterations": (lambda v: v >= 1, "an int >= 1"),
    "loop.validate_every": (lambda v: v >= 0, "an int >= 0"),
    "early_stopping.patience": (lambda v: v >= 1, "an int >= 1"),
    "early_stopping.min_iterations": (lambda v: v >= 1, "an int >= 1"),
    "early_stopping.min_delta": (lambda v: v >= 0, "a number >= 0"),
    "k": (lambda v: v >= 1, "an int >= 1"),
    "seeds": (lambda v: 1 <= v <= MAX_SEEDS, f"an int in [1, {MAX_SEEDS}] (dvc.yaml's seed slots)"),
    "device": (lambda v: v in DEVICES, f"one of {list(DEVICES)}"),
    "weights.path": (lambda v: v.strip() != "", "a non-empty local path"),
}
_ALLOWED = {  # what a union-typed key takes, for its error message
    "weights": "null (the built-in model), a local path, or a mapping {path, arch}",
    "base_port": "null (a free port) or an int in [1024, 65535]",
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the annotation ``tp`` (nested dataclasses included)."""
    origin = typing.get_origin(tp)
    if tp is Weights and isinstance(value, str):
        value = {"path": value}  # the short form: a path alone
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)  # type: ignore[arg-type]
    if tp is type(None):
        _check(value is None, key, value, "null")
        return None
    if origin is tuple:
        _check(isinstance(value, list | tuple), key, value, "a list")
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        _check(isinstance(value, Mapping), key, value, "a mapping")
        return dict(value)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(tp):
            if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
                return _coerce(value, option, key)  # its own errors name the inner key
            try:
                return _coerce(value, option, key)
            except ParamsError:
                continue
        allowed = _ALLOWED.get(key.rsplit(".", 1)[-1], str(tp))
        raise ParamsError(f"params: {key} = {value!r} is not allowed; expected {allowed}")
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, key, value, "a number")
        return float(value)
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, value, "an int")
        return value
    if tp is bool:
        _check(isinstance(value, bool), key, value, "true or false")
        return value
    if tp is str:
        _check(isinstance(value, str), key, value, "a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def _build(cls: type[T], data: Any, key: str) -> T:
    """A ``cls`` from a mapping, strictly: every key known, every value typed and in range."""
    _check(isinstance(data, Mapping), key, data, f"a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(
            f"params: unknown key {key}.{unknown[0]}; allowed keys under {key}: {sorted(fields)}"
        )
    values = {}
    for name, f in fields.items():
        sub = f"{key}.{name}"
        if name not in data:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ParamsError(f"params: missing key {sub} ({_type_name(hints[name])})")
            continue
        values[name] = _coerce(data[name], hints[name], sub)
        rule = _RULES.get(f"{key.rsplit('.', 1)[-1]}.{name}") or _RULES.get(name)
        if rule is not None:
            _check(rule[0](values[name]), sub, data[name], rule[1])
    try:
        return cls(**values)
    except ValueError as err:  # a dataclass's own check (e.g. AgentParams)
        raise ParamsError(f"params: {key}: {err}") from err


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate a loaded params mapping."""
    _check(isinstance(data, Mapping), source, data, "a mapping with 'profile' and 'profiles'")
    unknown = sorted(set(data) - {"profile", "profiles"})
    if unknown:
        raise ParamsError(f"params: unknown top-level key {unknown[0]}; allowed: profile, profiles")
    for required in ("profile", "profiles"):
        if required not in data:
            raise ParamsError(f"params: missing top-level key {required}")
    profiles_raw = data["profiles"]
    ok = isinstance(profiles_raw, Mapping) and len(profiles_raw) > 0
    _check(ok, "profiles", profiles_raw, "a non-empty mapping")
    profiles = {
        name: _build(Profile, raw, f"profiles.{name}") for name, raw in profiles_raw.items()
    }
    _check(data["profile"] in profiles, "profile", data["profile"], f"one of {sorted(profiles)}")
    for name, prof in profiles.items():
        w = prof.paligemma.weights
        key = f"profiles.{name}.paligemma.weights.arch"
        _check(w is None or w.arch is None, key, w and w.arch, "null (arch is CLIP's only)")
    return Params(data["profile"], profiles)


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """Read and validate ``path``; ``profile`` overrides its active profile."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if profile is not None and isinstance(data, dict):
        data = {**data, "profile": profile}
    return parse_params(data, str(path))
