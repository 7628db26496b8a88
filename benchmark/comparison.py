"""``comparison.json``, typed: the report's comparison of the arms (``Comparison`` and the records
it holds). The comparison writes them and the report's tables, figures, verdicts and the reference
check read them; ``Comparison.from_json`` reads the file back strictly: a key these records do not
know, or a missing one, is an ``UnknownColumn``, never a blank cell.

They live apart from the run files' rows (``benchmark/records.py``): the runs
depend on the code of those rows, so a change to the report's format restarts no run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from types import UnionType
from typing import Any, Generic, Self, TypeVar, Union, get_args, get_origin, get_type_hints

from benchmark.records import UnknownColumn

# The records write themselves as the JSON the report has always written (the same keys in the
# same order; ``json_ready`` then writes NaN as null). Field metadata:
OMIT_IF_NONE = "omit_if_none"  # left out of the JSON when None (None: the key is absent)
JSON_KEY = "json_key"  # the key in the JSON, where it is not the field's name
FLATTEN = "flatten"  # a dict field written as ``<prefix><key>`` keys of its parent
ABSENT = {OMIT_IF_NONE: True}


def _to_json(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _type_arguments(cls: type) -> dict[Any, Any]:
    """What the type variables of ``cls``'s generic bases stand for (``ArmRuns[SeedFigures]``)."""
    bound: dict[Any, Any] = {}
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            origin = get_origin(base)
            if origin is not None and origin is not Generic:
                bound.update(zip(origin.__parameters__, get_args(base), strict=True))
    return bound


def _from_json(
    kind: Any, value: Any, null_is_nan: bool = True, bound: Mapping[Any, Any] | None = None
) -> Any:
    """``value`` (read from JSON) as ``kind``: records, dicts, lists, numbers; a null float is NaN
    (``json_ready`` wrote NaN as null) unless the type allows None and ``null_is_nan`` is off.
    ``bound``: what the record's type variables stand for."""
    if isinstance(kind, TypeVar):
        kind = (bound or {})[kind]
    if kind is Any:
        return value
    origin, args = get_origin(kind), get_args(kind)
    if origin in (UnionType, Union):
        inner = [a for a in args if a is not type(None)]
        if value is None and (not null_is_nan or float not in inner):
            return None
        return _from_json(inner[0], value, bound=bound)
    if isinstance(kind, type) and issubclass(kind, JsonRecord):
        return kind.from_json(value)
    if origin is dict:
        return {k: _from_json(args[1], v, bound=bound) for k, v in value.items()}
    if origin is list:
        return [_from_json(args[0], v, bound=bound) for v in value]
    if kind is float:
        return float("nan") if value is None else float(value)
    if kind is int:
        return int(value)
    return value


@dataclass(frozen=True, kw_only=True)
class JsonRecord:
    """A record of a JSON file: ``to_json`` (the dict to write) and strict ``from_json``."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get(OMIT_IF_NONE):
                continue
            if FLATTEN in f.metadata:
                out.update({f"{f.metadata[FLATTEN]}{k}": v for k, v in value.items()})
            else:
                out[f.metadata.get(JSON_KEY, f.name)] = _to_json(value)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record of ``data``; a key it does not know, or a missing one, is an error."""
        hints, bound = get_type_hints(cls), _type_arguments(cls)
        flat = {f.metadata[FLATTEN]: f for f in fields(cls) if FLATTEN in f.metadata}
        keyed = {
            f.metadata.get(JSON_KEY, f.name): f for f in fields(cls) if FLATTEN not in f.metadata
        }
        values: dict[str, Any] = {f.name: {} for f in flat.values()}
        for key, value in data.items():
            if key in keyed:
                f = keyed[key]
                # a null where an absent key means None is a NaN; elsewhere None is None
                nan = bool(f.metadata.get(OMIT_IF_NONE))
                values[f.name] = _from_json(hints[f.name], value, nan, bound)
                continue
            prefix = next((p for p in flat if key.startswith(p) and len(key) > len(p)), None)
            if prefix is None:
                raise UnknownColumn(
                    f"{cls.__name__} has no key {key!r}: its keys are {list(keyed)} and the "
                    f"families {list(flat)}"
                )
            values[flat[prefix].name][key[len(prefix) :]] = _from_json(float, value)
        missing = [k for k, f in keyed.items() if f.name not in values and f.default is MISSING]
        if missing:
            raise UnknownColumn(f"{cls.__name__} without the keys {missing}")
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Estimate(JsonRecord):
    """A figure over seeds: the mean, its Student-t interval and the n it rests on (NaN: none)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True, kw_only=True)
class Difference(Estimate):
    """A paired per-seed difference of two arms: its estimate, standard deviation, minimum
    detectable difference; in the model's metric also the probability of improvement (over all
    runs) and, given a margin, the equivalence test's p and, in the final metric and the area,
    the paired seeds that would detect a difference of that margin at this spread; the
    per-seed differences last."""

    sd: float
    mde: float
    poi: float | None = field(default=None, metadata=ABSENT)
    poi_ci_low: float | None = field(default=None, metadata=ABSENT)
    poi_ci_high: float | None = field(default=None, metadata=ABSENT)
    poi_runs_x: int | None = field(default=None, metadata=ABSENT)
    poi_runs_y: int | None = field(default=None, metadata=ABSENT)
    equivalence_p: float | None = field(default=None, metadata=ABSENT)
    equivalence_margin: float | None = field(default=None, metadata=ABSENT)
    seeds_for_margin: float | None = field(default=None, metadata=ABSENT)
    per_seed: list[float]


@dataclass(frozen=True, kw_only=True)
class SeedFigures(JsonRecord):
    """One run's comparison figures (a seed's row of an arm): ``terms`` and ``n_terms`` are
    written as ``term/<key>`` and ``n_terms/<n>``."""

    seed: int
    final_metric: float
    final_control: float
    grounded_gain: float
    initial_metric: float
    auc: float
    samples_to_random_final: float
    generated_samples: float
    valid_rate: float
    iterations: float
    hardness: float
    error_rate: float
    left_right_share: float
    stopped: str | None
    terms: dict[str, float] = field(default_factory=dict, metadata={FLATTEN: "term/"})
    n_terms: dict[str, float] = field(default_factory=dict, metadata={FLATTEN: "n_terms/"})
    j1: float
    j2: float
    vlm_reward: float
    vlm_share: float

    def value(self, key: str) -> float:
        """The figure ``key``: a number field (``final_metric``, ...), ``term/<key>`` or
        ``n_terms/<n>``; another name is an ``UnknownColumn``."""
        for name, prefix in (("terms", "term/"), ("n_terms", "n_terms/")):
            if key.startswith(prefix) and key[len(prefix) :] in getattr(self, name):
                return getattr(self, name)[key[len(prefix) :]]
        if key in SEED_FIGURES:
            return float(getattr(self, key))
        raise UnknownColumn(
            f"a seed's figures have no {key!r}: they are {SEED_FIGURES}, term/<key> and n_terms/<n>"
        )


SEED_FIGURES = tuple(
    f.name for f in fields(SeedFigures) if f.name not in ("seed", "stopped", "terms", "n_terms")
)


SeedRecord = TypeVar("SeedRecord", bound=JsonRecord)


@dataclass(frozen=True, kw_only=True)
class ArmRuns(JsonRecord, Generic[SeedRecord]):
    """An arm's runs: each seed's record, their estimates over seeds, the number of seeds."""

    seeds: list[SeedRecord]
    stats: dict[str, Estimate]
    n_seeds: int


class ArmFigures(ArmRuns[SeedFigures]):
    """An arm's runs in the comparison (``SeedFigures``, estimates by ``STAT_KEYS``)."""


@dataclass(frozen=True, kw_only=True)
class ByTerms(JsonRecord):
    """The final test metric per spatial term or by number of terms: per arm, and sac - random."""

    arms: dict[str, dict[str, Estimate]]
    sac_minus_random: dict[str, Difference] = field(metadata={JSON_KEY: "sac - random"})


@dataclass(frozen=True, kw_only=True)
class ExternalSeed(JsonRecord):
    """One run on an external set: the base model's score, the final one, their difference, and
    the same run's gain on the synthetic test set."""

    seed: int
    initial: float
    final: float
    gain: float
    test_gain: float


class ExternalArm(ArmRuns[ExternalSeed]):
    """An arm's runs on an external set (``ExternalSeed``, estimates by ``EXTERNAL_KEYS``)."""


@dataclass(frozen=True, kw_only=True)
class DecompositionRow(JsonRecord):
    """One effect of the headline's decomposition: its paired difference and verdict."""

    effect: str
    difference: str
    n: int
    verdict: str
    final_metric: Difference
    auc: Difference


@dataclass(frozen=True, kw_only=True)
class TermVerdicts(JsonRecord):
    """The verdict of sac - random per spatial term and by number of terms."""

    by_term: dict[str, str]
    by_n_terms: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Claim(JsonRecord):
    """One of the paper's claims, what the runs found, and the verdict with its n."""

    claim: str
    found: str
    verdict: str


@dataclass(frozen=True, kw_only=True)
class Comparison(JsonRecord):
    """``comparison.json``: how the figures are computed, each arm's figures, every paired
    difference, the per-term tables; the report adds where the margin was set, the
    decomposition, the verdicts, the claims and the machine's fingerprint."""

    interval: str
    min_seeds_for_verdict: int
    margin: float | None
    equivalence: str
    detectable_difference: str
    probability_of_improvement: str
    arms: dict[str, ArmFigures]
    difference: dict[str, Difference]  # differences["sac - random"], the paper's comparison
    differences: dict[str, dict[str, Difference]]
    paired_seeds: list[int]
    paired: dict[str, list[int]]
    by_term: ByTerms
    by_n_terms: ByTerms
    external: dict[str, dict[str, ExternalArm]] | None = field(
        default=None, metadata=ABSENT
    )  # only with external sets
    margin_key: str | None = field(default=None, metadata=ABSENT)
    decomposition: list[DecompositionRow] | None = field(default=None, metadata=ABSENT)
    term_verdicts: TermVerdicts | None = field(default=None, metadata=ABSENT)
    claims: list[Claim] | None = field(default=None, metadata=ABSENT)
    fingerprint: dict[str, Any] | None = field(default=None, metadata=ABSENT)
