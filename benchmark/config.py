"""The params schema: ``params.yaml`` holds profiles; one key, ``profile``, picks the active one.

One typed schema (pydantic dataclasses, strict) covers every block, the models' ``evaluate``,
``finetune``, ``pretrain`` and ``probe`` blocks included; the families, base training and the
probe use these classes as their configs. Reading is strict: an unknown key, a missing key, a
value of the wrong type or out of range is a ``ParamsError`` that names the key path (e.g.
``profiles.bench.loop.eta``) and what is allowed, which the schema's annotations spell out.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast

import annotated_types
import yaml
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from benchmark import arms as _arms
from benchmark.families import MODELS

T = TypeVar("T")
# the arms (benchmark/arms.py); every arm but sac runs on the sac run's budget (same seed)
ARMS, BUDGET_ARMS = _arms.ARMS, _arms.BUDGET_ARMS
BACKENDS = ("embedded", "unity")  # sim.backend (benchmark/sim/backends.py)
MAX_SEEDS = 10  # dvc.yaml has one stage per seed slot 0..MAX_SEEDS-1

Backend = Literal["embedded", "unity"]
# what PaliGemma's fine-tuning trains: the paper's attention projections of the language model,
# or the whole language model (its embeddings, attention, MLPs and norms; the tower and the
# projector stay as base training left them)
Trainable = Literal["attention", "language_model"]
Device = Literal["auto", "cuda"]
# the layouts an external evaluation set is read from (benchmark/external.py)
ExternalFormat = Literal["rls3", "whatsup", "vsr"]
# Strict types: no "5" for 5, no 1 for true; an int is a number.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]

SCHEMA = ConfigDict(extra="forbid")  # every class below; frozen too: a config is a value


class ParamsError(ValueError):
    """A params file or value that breaks the schema; the message names the key."""


# ---------------------------------------------------------------------------- the run's blocks


@dataclass(frozen=True, config=SCHEMA)
class AgentParams:
    """SAC's knobs (params.yaml ``agent``)."""

    pretrain_steps: NonNegativeInt = 5000  # P: intrinsic-only pre-training steps
    learning_rate: PositiveFloat = 2e-3  # fastest start (0.84 valid at 6k steps), but levels
    # off there; 3e-4 (the paper's) is slower and goes higher: 0.85 at 20k, 0.90 at 30k
    # (docs/research.md, "SAC")
    gamma: Fraction = 0.0  # pre-training discount: feasibility is immediate (the loop has its own)
    batch_size: PositiveInt = 256
    buffer_size: PositiveInt = 100_000
    learning_starts: NonNegativeInt = 1000  # uniform actions before the first update
    # actor and critic hidden layers
    hidden: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (256, 256)


@dataclass(frozen=True, config=SCHEMA)
class UnityParams:
    """The ``unity`` backend's build and connection (unity_build/README.md)."""

    # the player; unity_build/RLS3Embedded.x86_64 serves the embedded scenes over the same protocol
    build: Annotated[str, Strict(), Field(min_length=1)] = "unity_build/RLS3.x86_64"
    # the ML-Agents port (each further env in a process: +1); null takes a free port
    base_port: Annotated[int, Strict(), Field(ge=1024, le=65535)] | None = None
    timeout_s: PositiveInt = 60  # how long to wait for the player to answer


@dataclass(frozen=True, config=SCHEMA)
class SimParams:
    """The simulator (``PlacementEnv`` arguments, and which backend serves them)."""

    backend: Backend = "embedded"  # embedded (PyBullet, in process) or unity (mlagents-envs)
    unity: UnityParams = field(default_factory=UnityParams)  # read when backend is unity
    image_size: Annotated[int, Strict(), Field(ge=8)] = 64  # px
    swap_prob: Fraction = 0.25
    scene_period: PositiveInt = 4  # steps
    max_steps_factor: PositiveInt = 8  # an episode is truncated at max_steps_factor * t0 steps


@dataclass(frozen=True, config=SCHEMA)
class ExternalSetParams:
    """An external evaluation set on disk: photographs with a true caption and alternatives
    (``benchmark/external.py``; its layouts in datasets/README.md, "External sets")."""

    # its name in the run files, MLflow and the report (external/<name>/...)
    name: Annotated[str, Strict(), Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    # the set: a folder with captions.jsonl (rls3), What'sUp's annotation JSON (whatsup) or a
    # VSR split's JSON Lines file (vsr); relative paths are from the repository root
    path: Annotated[str, Strict(), Field(min_length=1)]
    format: ExternalFormat = "rls3"
    # where the images are, for the whatsup and vsr layouts (null: where the layout keeps them)
    images: Annotated[str, Strict(), Field(min_length=1)] | None = None


@dataclass(frozen=True, config=SCHEMA)
class DatasetParams:
    """The fixed evaluation sets."""

    validation: PositiveInt = 200  # samples from the train environment
    test: PositiveInt = 300  # samples from the test environment
    seed: Int = 2025
    # sets of real photographs (or any images) scored beside the test set at every test
    # evaluation of every run (spec section 6, "external sets"); [] for none
    external: tuple[ExternalSetParams, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.external]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"external: each set needs its own name; given twice: {twice}")


@dataclass(frozen=True, config=SCHEMA)
class LoopParams:
    """Algorithm 1's knobs."""

    t0: PositiveInt = 32  # T0: valid samples per episode
    # sampling rate of an episode's samples into the fine-tuning batch
    eta: Annotated[float, Strict(), Field(gt=0, le=1)] = 0.5
    episodes: PositiveInt = 4  # E: episodes per iteration
    beta: NonNegativeFloat = 10.0  # reward scale of J2 (eq. 4)
    gamma: Fraction = 0.99  # SAC's discount inside the loop (pre-training has agent.gamma)
    max_iterations: PositiveInt = 20  # hard cap (early stopping usually ends the sac arm first)
    validate_every: NonNegativeInt = 0  # F, in K units (epochs or steps); 0: only at the
    # iteration's end
    # a budget arm's last iteration, cut short when the budget runs out, fine-tunes only when its
    # batch holds at least this fraction of E * eta * T0: K epochs over a handful of samples
    # overfit them (measured: 40 samples x 24 epochs took a random run from 0.442 to 0.341)
    min_batch_fraction: Fraction = 0.5


@dataclass(frozen=True, config=SCHEMA)
class EarlyStopping:
    """Stop when validation has not improved by > min_delta for patience iterations."""

    patience: PositiveInt = 5
    min_iterations: PositiveInt = 10
    min_delta: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=SCHEMA)
class GridParams:
    """What each run of ``rls3 grid`` asks of Ray (docs/guide.md, "Run on a cluster")."""

    cpus: PositiveFloat = 1.0  # CPU cores Ray reserves per run (torch's threads: ``threads``)
    gpus: NonNegativeFloat = 0.0  # GPUs per run (a fraction shares one)
    memory_gb: NonNegativeFloat = 0.0  # memory Ray reserves per run; 0: none reserved
    retries: NonNegativeInt = 3  # a run whose worker died (or whose Unity player stopped) is
    # retried, resuming


# ---------------------------------------------------------------------------- the models' blocks


@dataclass(frozen=True, config=SCHEMA)
class ClipEvaluate:
    """How the CLIP family scores samples (params.yaml ``clip.evaluate``): the base model and
    the runs alike."""

    batch_size: PositiveInt = 256  # samples per contrastive group (>= T0 keeps J2 exact)


@dataclass(frozen=True, config=SCHEMA)
class ClipFinetune:
    """The CLIP family's fine-tuning (params.yaml ``clip.finetune``): the runs and the probe."""

    lr: PositiveFloat = 1e-4  # AdamW learning rate of fine-tuning
    weight_decay: NonNegativeFloat = 0.1  # AdamW weight decay (not on gains, biases, logit_scale)
    batch_size: PositiveInt = 32  # fine-tuning minibatch, samples (each with 3 texts)
    lock_image: Bool = False  # LiT: image trunk fixed in finetune, its features computed once
    # BatchNorm in fine-tuning keeps its running statistics and normalises with them (as
    # open_clip's ``lock_image_tower(freeze_bn_stats=True)``); measured: docs/research.md,
    # "BatchNorm"
    freeze_bn_stats: Bool = True


_CLIP_EVALUATE, _CLIP_FINETUNE = ClipEvaluate(), ClipFinetune()  # the records' defaults


@dataclass(frozen=True, config=SCHEMA)
class ClipVLMConfig:
    """A CLIP model's knobs at run time: its family's ``evaluate`` and ``finetune`` blocks in one
    record (``ClipVLMConfig.of``), and the seed; each default is its block's."""

    lr: PositiveFloat = _CLIP_FINETUNE.lr
    weight_decay: NonNegativeFloat = _CLIP_FINETUNE.weight_decay
    batch_size: PositiveInt = _CLIP_FINETUNE.batch_size
    eval_batch_size: PositiveInt = _CLIP_EVALUATE.batch_size
    seed: Int = 0  # seeds model building and the minibatch order (a run sets its own)
    lock_image: Bool = _CLIP_FINETUNE.lock_image
    freeze_bn_stats: Bool = _CLIP_FINETUNE.freeze_bn_stats

    @classmethod
    def of(cls, evaluate: ClipEvaluate, finetune: ClipFinetune, seed: int = 0) -> ClipVLMConfig:
        """The record of the two blocks (every field of each is read)."""
        return cls(**dataclasses.asdict(finetune), eval_batch_size=evaluate.batch_size, seed=seed)


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaEvaluate:
    """How the PaliGemma family is asked and scored (params.yaml ``paligemma.evaluate``): the
    base model and the runs alike; the prefix goes before every question, in training too."""

    batch_size: PositiveInt = 64  # samples per generate call
    max_new_tokens: PositiveInt = 24  # generation cap; the longest built-in answer is 18
    # tokens + <eos>
    prompt_prefix: Str = ""  # before the question, e.g. "answer en " for google's pt checkpoints


def _lora_needs_attention(lora: bool, trainable: str) -> None:
    if lora and trainable != "attention":
        raise ValueError(
            f"lora: true adapts the attention projections only, but trainable is "
            f"{trainable!r}; set lora: false, or trainable: 'attention'"
        )


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaFinetune:
    """The PaliGemma family's fine-tuning (params.yaml ``paligemma.finetune``)."""

    lr: PositiveFloat = 3e-4  # AdamW learning rate of fine-tuning
    weight_decay: NonNegativeFloat = 0.0  # AdamW weight decay
    batch_size: PositiveInt = 16  # fine-tuning minibatch, samples
    trainable: Trainable = "attention"  # the paper's choice; "language_model": all of it
    lora: Bool = False  # False: train the ``trainable`` weights; True: a LoRA adapter on the
    # attention projections (with ``trainable: attention`` only)
    lora_r: PositiveInt = 8  # LoRA rank
    lora_alpha: PositiveInt = 16  # LoRA scale numerator (the update is scaled by alpha / r)
    lora_dropout: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0.0  # dropout on the LoRA input

    def __post_init__(self) -> None:
        _lora_needs_attention(self.lora, self.trainable)


_PALIGEMMA_EVALUATE, _PALIGEMMA_FINETUNE = PaligemmaEvaluate(), PaligemmaFinetune()


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaVLMConfig:
    """A PaliGemma model's knobs at run time: its family's ``evaluate`` and ``finetune`` blocks
    in one record (``PaligemmaVLMConfig.of``), and the seed; each default is its block's."""

    lr: PositiveFloat = _PALIGEMMA_FINETUNE.lr
    weight_decay: NonNegativeFloat = _PALIGEMMA_FINETUNE.weight_decay
    batch_size: PositiveInt = _PALIGEMMA_FINETUNE.batch_size
    trainable: Trainable = _PALIGEMMA_FINETUNE.trainable
    lora: Bool = _PALIGEMMA_FINETUNE.lora
    lora_r: PositiveInt = _PALIGEMMA_FINETUNE.lora_r
    lora_alpha: PositiveInt = _PALIGEMMA_FINETUNE.lora_alpha
    lora_dropout: Annotated[float, Strict(), Field(ge=0, lt=1)] = _PALIGEMMA_FINETUNE.lora_dropout
    eval_batch_size: PositiveInt = _PALIGEMMA_EVALUATE.batch_size
    max_new_tokens: PositiveInt = _PALIGEMMA_EVALUATE.max_new_tokens
    prompt_prefix: Str = _PALIGEMMA_EVALUATE.prompt_prefix
    seed: Int = 0  # seeds model building, LoRA init and the minibatch order (a run sets its own)

    def __post_init__(self) -> None:
        _lora_needs_attention(self.lora, self.trainable)

    @classmethod
    def of(
        cls, evaluate: PaligemmaEvaluate, finetune: PaligemmaFinetune, seed: int = 0
    ) -> PaligemmaVLMConfig:
        """The record of the two blocks (every field of each is read)."""
        return cls(
            **dataclasses.asdict(finetune),
            eval_batch_size=evaluate.batch_size,
            max_new_tokens=evaluate.max_new_tokens,
            prompt_prefix=evaluate.prompt_prefix,
            seed=seed,
        )


@dataclass(frozen=True, config=SCHEMA)
class ClipPretrainConfig:
    """Sizes of the CLIP base training (small defaults: a few minutes on a 2-core CPU)."""

    samples: PositiveInt = 3000  # train-environment samples
    epochs: PositiveInt = 6  # passes over them
    batch_size: PositiveInt = 32  # contrastive batch, all from one scene
    lr: PositiveFloat = 2e-3  # AdamW peak of a one-cycle schedule
    weight_decay: Float = 0.1
    swap_prob: Fraction = 1.0  # object swaps while collecting: decorrelates objects from scenes
    test_samples: PositiveInt = 300  # test-environment samples for the measurements
    seed: Int = 0


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaPretrainConfig:
    """Sizes of the PaliGemma base training (small defaults: minutes on a 2-core CPU)."""

    samples: PositiveInt = 3000  # train-environment samples
    vision_steps: NonNegativeInt = 600  # stage 1: AdamW steps of the vision tower on where
    # objects are
    vision_batch_size: PositiveInt = 32  # images per stage-1 step, all from one scene
    vision_lr: PositiveFloat = 2e-3  # stage-1 AdamW peak of a one-cycle schedule
    steps: PositiveInt = 1200  # stage 2: AdamW steps of projector and language model on captions
    batch_size: PositiveInt = 32  # examples per stage-2 step
    objects_fraction: Fraction = 0.3  # of stage-2 examples on the objects prompt
    detect_fraction: Fraction = 0.3  # of stage-2 examples on detection; the rest: position
    # question
    lr: PositiveFloat = 1e-3  # stage-2 AdamW peak of a one-cycle schedule
    swap_prob: Fraction = 1.0  # object swaps while collecting: decorrelates objects from scenes
    test_samples: PositiveInt = 200  # test-environment samples for the measurements
    seed: Int = 0


@dataclass(frozen=True, config=SCHEMA)
class LearnabilityConfig:
    """The learnability probe's fixed budget (params.yaml ``clip.probe``, ``paligemma.probe``)."""

    samples: PositiveInt = 2000  # random-placement train-environment samples, fine-tuned on
    epochs: PositiveInt = 50  # K passes over them in one ``finetune`` call
    seed: Int = 7  # of the samples (the simulator and caption draws) and the minibatch order
    # independent train sets (seeds seed, seed + 1, ...): the figures are their mean and range,
    # and the targets are checked on the mean (one draw of samples is one draw)
    draws: PositiveInt = 3


def _path_alone(value: Any) -> Any:
    """The short form of ``weights``: a path alone."""
    return {"path": value} if isinstance(value, str) else value


@dataclass(frozen=True, config=SCHEMA)
class Weights:
    """Real pretrained weights of one model (spec section 5): a local path, never a hub name.

    In params.yaml: a path (``weights: /weights/paligemma-3b-pt-224``) or a mapping with the
    open_clip architecture of a bare ``.safetensors`` file (``{path: ..., arch: ViT-B-32}``).
    A relative path is relative to the repository root (where ``dvc repro`` runs).
    """

    path: Annotated[str, Strict(), Field(pattern=r"\S")]
    arch: Str | None = None  # CLIP only: the open_clip architecture name


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaWeights:
    """PaliGemma's real weights: a Hugging Face snapshot names its own architecture."""

    path: Annotated[str, Strict(), Field(pattern=r"\S")]
    arch: None = None  # arch is CLIP's only


@dataclass(frozen=True, config=SCHEMA)
class ModelParams:
    """What every VLM family has: its K, seeds and early stopping, and the probe's budget."""

    k: PositiveInt = 1  # K: epochs (CLIP) or steps (PaliGemma) of fine-tuning per iteration
    # runs use seeds 0..seeds-1 (dvc.yaml has MAX_SEEDS seed slots)
    seeds: Annotated[int, Strict(), Field(ge=1, le=MAX_SEEDS)] = 2
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    probe: LearnabilityConfig = field(default_factory=LearnabilityConfig)
    # the report's equivalence margin delta, in the model's metric: two arms are "equivalent"
    # when the 90% interval of their paired difference lies inside +/- margin (two one-sided
    # tests)
    margin: PositiveFloat = 0.02


@dataclass(frozen=True, config=SCHEMA)
class ClipParams(ModelParams):
    """The CLIP family's block."""

    evaluate: ClipEvaluate = field(default_factory=ClipEvaluate)
    finetune: ClipFinetune = field(default_factory=ClipFinetune)
    pretrain: ClipPretrainConfig = field(default_factory=ClipPretrainConfig)
    # null: the built-in model, base-trained by the base_model stage; else real weights, which
    # that stage records instead of training (``vlm.weights``)
    weights: Annotated[Weights | None, BeforeValidator(_path_alone)] = None

    def vlm_config(self, seed: int = 0) -> ClipVLMConfig:
        """The runs' model knobs: ``evaluate`` and ``finetune``, and ``seed``."""
        return ClipVLMConfig.of(self.evaluate, self.finetune, seed)


@dataclass(frozen=True, config=SCHEMA)
class PaligemmaParams(ModelParams):
    """The PaliGemma family's block."""

    evaluate: PaligemmaEvaluate = field(default_factory=PaligemmaEvaluate)
    finetune: PaligemmaFinetune = field(default_factory=PaligemmaFinetune)
    pretrain: PaligemmaPretrainConfig = field(default_factory=PaligemmaPretrainConfig)
    weights: Annotated[PaligemmaWeights | None, BeforeValidator(_path_alone)] = None

    def vlm_config(self, seed: int = 0) -> PaligemmaVLMConfig:
        """The runs' model knobs: ``evaluate`` and ``finetune``, and ``seed``."""
        return PaligemmaVLMConfig.of(self.evaluate, self.finetune, seed)


# ---------------------------------------------------------------------------- profiles


@dataclass(frozen=True, config=SCHEMA)
class Profile:
    """One profile: everything a run of the benchmark reads."""

    sim: SimParams
    datasets: DatasetParams
    loop: LoopParams
    agent: AgentParams
    clip: ClipParams
    paligemma: PaligemmaParams
    # auto: CUDA when visible, else the CPU; cuda: the profile needs a CUDA device (`rls3 check`
    # fails without one rather than start a paper-scale run on a CPU)
    device: Device = "auto"
    # torch's CPU threads in each run (`rls3 run`, `rls3 perf loop`, every `rls3 grid` task),
    # each agent's pre-training and each base training: the thread count changes the order of
    # torch's sums, so what they write depends on it and on nothing else of the engine that
    # made it
    threads: PositiveInt = 1
    grid: GridParams = field(default_factory=GridParams)  # `rls3 grid` on Ray (not DVC's path)

    def model(self, name: str) -> ClipParams | PaligemmaParams:
        """The block of model ``name``."""
        if name not in MODELS:
            raise ParamsError(f"params: model = {name!r} is not allowed; expected one of {MODELS}")
        block: ClipParams | PaligemmaParams = getattr(self, name)  # a field per family
        return block

    @property
    def agent_seeds(self) -> int:
        """How many pre-trained agents the runs use (seeds 0..n-1): one per seed of the model
        with the most; both models' runs of a seed share its agent."""
        return max(self.clip.seeds, self.paligemma.seeds)


@dataclass(frozen=True, config=SCHEMA)
class Params:
    """A params file: its profiles and the active one's name."""

    profile: Str
    profiles: Annotated[dict[str, Profile], Field(min_length=1)]

    @property
    def active(self) -> Profile:
        """The profile ``profile`` names."""
        return self.profiles[self.profile]


# ---------------------------------------------------------------------------- errors


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """``tp`` without ``Annotated`` and ``None``, and the constraints ``Annotated`` carried."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(tp) is Annotated:
            tp, *extra = typing.get_args(tp)
            metadata += extra
            continue
        if typing.get_origin(tp) in (types.UnionType, typing.Union):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) == 1:
                tp = options[0]
                continue
        return tp, metadata


def _field_type(root: Any, loc: tuple[int | str, ...]) -> tuple[Any, list[Any]] | None:
    """The annotation (and constraints) of the key at ``loc`` in ``root``, or None."""
    tp, metadata = _strip(root)
    for part in loc:
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp, include_extras=True)
            if part not in hints:
                return None
            tp, metadata = _strip(hints[part])
        elif typing.get_origin(tp) in (dict, tuple):
            tp, metadata = _strip(typing.get_args(tp)[-1 if typing.get_origin(tp) is dict else 0])
        else:
            return None
    return tp, metadata


def allowed(tp: Any, metadata: list[Any]) -> str:
    """What a key of type ``tp`` with ``metadata`` constraints accepts, in words."""
    if typing.get_origin(tp) is Literal:
        return f"one of {list(typing.get_args(tp))}"
    if tp in (Weights, PaligemmaWeights):
        return "null (the built-in model), a local path, or a mapping {path, arch}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    if typing.get_origin(tp) is tuple:
        item = allowed(*_strip(typing.get_args(tp)[0])).replace("an int", "ints")
        return "a non-empty list of " + item.replace("a number", "numbers")
    if typing.get_origin(tp) is dict:
        return f"a non-empty mapping of names to {typing.get_args(tp)[1].__name__} blocks"
    names = {int: "an int", float: "a number", bool: "true or false", str: "a string"}
    kind = names.get(tp, getattr(tp, "__name__", str(tp)))
    lo = hi = ""  # "[0" or "(0"; "1]" or "1)"
    for m in metadata:
        for c in getattr(m, "metadata", [m]):  # a Field carries its constraints in metadata
            if isinstance(c, annotated_types.Ge):
                lo = f"[{c.ge}"
            elif isinstance(c, annotated_types.Gt):
                lo = f"({c.gt}"
            elif isinstance(c, annotated_types.Le):
                hi = f"{c.le}]"
            elif isinstance(c, annotated_types.Lt):
                hi = f"{c.lt})"
            elif getattr(c, "pattern", None) is not None:
                kind = "a non-empty string"
    if lo and hi:
        return f"{kind} in {lo}, {hi}"
    if lo:
        return f"{kind} {'>=' if lo[0] == '[' else '>'} {lo[1:]}"
    if hi:
        return f"{kind} {'<=' if hi[-1] == ']' else '<'} {hi[:-1]}"
    return kind


def _key(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _params_error(err: ValidationError, root: Any = None, prefix: str = "") -> ParamsError:
    """The first of pydantic's errors in validating a ``root`` (``Params``), as a
    ``ParamsError`` naming the key (under ``prefix``) and what it takes."""
    root = Params if root is None else root
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))  # union tags out
    key = ".".join(k for k in (prefix, _key(loc)) if k)
    if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = _field_type(root, loc[:-1])
        keys = sorted(f.name for f in dataclasses.fields(parent[0])) if parent else []
        under = ".".join(k for k in (prefix, _key(loc[:-1])) if k)
        return ParamsError(f"params: unknown key {key}; allowed keys under {under}: {keys}")
    if e["type"] == "value_error":  # a dataclass's own check of its fields together
        return ParamsError(f"params: {key}: {str(e['msg']).removeprefix('Value error, ')}")
    found = _field_type(root, loc)
    if e["type"] in ("missing", "missing_argument"):
        what = f" ({allowed(*found)})" if found else ""
        return ParamsError(f"params: missing key {key}{what}")
    expected = allowed(*found) if found else e["msg"]
    if found and found[0] is type(None):
        expected = "null"
    return ParamsError(f"params: {key} = {e['input']!r} is not allowed; expected {expected}")


def override(config: T, key: str, **changes: Any) -> T:
    """``config`` (a block of the schema) with ``changes``, validated: a command's flags and the
    profile's image size go through the schema too, and an error names the key under ``key``."""
    try:
        return dataclasses.replace(config, **changes)  # type: ignore[type-var]
    except ValidationError as err:
        raise _params_error(err, type(config), key) from None


_PARAMS: TypeAdapter[Params] = TypeAdapter(Params)

# params.yaml is the one home of every knob the pipeline reads: a key the file leaves out is an
# error, not a default from the code. The exceptions are keys a stage fills in itself (a run
# seeds its own VLM) and keys whose absence has a meaning (an external set's images where its
# layout keeps them; the short form of weights, a path without an architecture).
FILLED_BY_STAGES: dict[type, frozenset[str]] = {
    ClipVLMConfig: frozenset({"seed"}),
    PaligemmaVLMConfig: frozenset({"seed"}),
}
OPTIONAL_KEYS: dict[type, frozenset[str]] = {
    ExternalSetParams: frozenset({"images"}),
    Weights: frozenset({"arch"}),
    PaligemmaWeights: frozenset({"arch"}),
}


def missing_keys(data: Any, schema: Any = Params, key: str = "") -> list[str]:
    """The keys of ``schema`` that ``data`` (a loaded params mapping) leaves out, as key paths
    (``profiles.bench.loop.t0``), nested blocks, lists of blocks and named profiles included."""
    tp, _ = _strip(schema)
    if not isinstance(data, Mapping):
        return []
    if typing.get_origin(tp) is dict:  # the profiles, by name
        value_type = typing.get_args(tp)[1]
        return [m for name, v in data.items() for m in missing_keys(v, value_type, f"{key}.{name}")]
    if not dataclasses.is_dataclass(tp):
        return []
    hints = typing.get_type_hints(tp, include_extras=True)
    cls = cast(type, tp)
    skip = FILLED_BY_STAGES.get(cls, frozenset()) | OPTIONAL_KEYS.get(cls, frozenset())
    missing: list[str] = []
    for f in dataclasses.fields(tp):
        path = f"{key}.{f.name}".lstrip(".")
        if f.name in skip:
            continue
        if f.name not in data:
            missing.append(path)
            continue
        inner, _ = _strip(hints[f.name])
        value = data[f.name]
        if typing.get_origin(inner) is tuple and isinstance(value, list):
            item = typing.get_args(inner)[0]
            missing += [
                m for i, v in enumerate(value) for m in missing_keys(v, item, f"{path}[{i}]")
            ]
        else:
            missing += missing_keys(value, hints[f.name], path)
    return missing


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate a loaded params mapping."""
    if not isinstance(data, Mapping):
        raise ParamsError(
            f"params: {source} = {data!r} is not allowed; expected a mapping with 'profile' and "
            "'profiles'"
        )
    try:
        params = _PARAMS.validate_python(dict(data))
    except ValidationError as err:
        raise _params_error(err) from None
    if params.profile not in params.profiles:
        raise ParamsError(
            f"params: profile = {params.profile!r} is not allowed; expected one of "
            f"{sorted(params.profiles)}"
        )
    missing = missing_keys(data)
    if missing:
        found = _field_type(
            Params,
            tuple(
                int(p) if p.isdigit() else p
                for p in missing[0].replace("[", ".").replace("]", "").split(".")
            ),
        )
        what = f" ({allowed(*found)})" if found else ""
        more = f", and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ParamsError(
            f"params: missing key {missing[0]}{what}{more}: {source} sets every knob the pipeline "
            "reads (the code holds no default for them); add it"
        )
    return params


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """Read and validate ``path``; ``profile`` overrides its active profile."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if profile is not None and isinstance(data, dict):
        data = {**data, "profile": profile}
    return parse_params(data, str(path))
