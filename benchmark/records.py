"""The rows of a run's files, typed: ``metrics.csv`` (``IterationRow``), ``episodes.csv``
(``EpisodeRow``), ``finetune_loss.csv`` (``LossRow``; the inner validations that MLflow also
gets are ``InnerValidation``) and ``summary.json`` (``RunSummary``). The loop writes them; the
report, MLflow, the grid and the tests read them by the names below. A column these records do
not know is an error, never a blank plot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# metrics.csv's fixed columns, in the order written: record field -> column name
ITERATION_COLUMNS = {
    "iteration": "iteration",
    "generated_samples": "generated_samples",
    "valid_samples": "valid_samples",
    "valid_rate": "valid_rate",
    "episodes": "episodes",
    "batch_size": "batch_size",
    "finetune_loss_mean": "finetune_loss_mean",
    "hardness": "hardness",
    "error_rate": "error_rate",
    "val_metric": "val/metric",
    "test_metric": "test/metric",
    "test_control": "test/control",
    "test_grounded_gain": "test/grounded_gain",
}
# the columns that come in families, after the fixed ones: record field -> column prefix
ITERATION_FAMILIES = {
    "subsets": ("test/term/", "test/n_terms/"),  # the test metric per term, per number of terms
    "external": ("external/",),  # each external set: external/<set>/metric, .../term/<term>
    "batch_terms": ("batch_terms/",),  # the iteration's batch, samples per term
    "batch_terms_cum": ("batch_terms_cum/",),  # the same, cumulated over the run
}


class UnknownColumn(ValueError):
    """A column name no run file has: a typo, or a file of another format."""


def iteration_column(name: str) -> str:
    """``name`` if it is a column of ``metrics.csv`` (fixed, or of a known family), else an
    ``UnknownColumn`` naming the known ones."""
    if name in ITERATION_COLUMNS.values():
        return name
    if any(
        name.startswith(p) and len(name) > len(p) for ps in ITERATION_FAMILIES.values() for p in ps
    ):
        return name
    raise UnknownColumn(
        f"metrics.csv has no column {name!r}: its columns are {list(ITERATION_COLUMNS.values())} "
        f"and the families {[p for ps in ITERATION_FAMILIES.values() for p in ps]}"
    )


@dataclass(frozen=True)
class IterationRow:
    """One iteration of a run (row 0: the base model, before any fine-tuning)."""

    iteration: int
    generated_samples: int  # cumulative generated samples (environment steps)
    valid_samples: int  # cumulative valid samples
    valid_rate: float
    episodes: int  # episodes this iteration
    batch_size: int  # samples fine-tuned on this iteration
    finetune_loss_mean: float  # NaN: no fine-tuning this iteration
    hardness: float  # mean over the iteration's valid samples, under the VLM before fine-tuning
    error_rate: float
    val_metric: float
    test_metric: float
    test_control: float  # the test set asked of the image-shuffled control's images
    test_grounded_gain: float  # test_metric - test_control
    subsets: dict[str, float] = field(default_factory=dict)
    external: dict[str, float] = field(default_factory=dict)
    batch_terms: dict[str, float] = field(default_factory=dict)  # by column name
    batch_terms_cum: dict[str, float] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """The CSV row, columns in the order written (fixed, then each family)."""
        row: dict[str, Any] = {col: getattr(self, f) for f, col in ITERATION_COLUMNS.items()}
        for family in ITERATION_FAMILIES:
            row.update(getattr(self, family))
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IterationRow:
        """A row of ``metrics.csv`` (or of a run's state); an unknown column is an error."""
        fixed = {f: row[col] for f, col in ITERATION_COLUMNS.items() if col in row}
        missing = [col for col in ITERATION_COLUMNS.values() if col not in row]
        if missing:
            raise UnknownColumn(f"metrics.csv row without the columns {missing}")
        families: dict[str, dict[str, float]] = {f: {} for f in ITERATION_FAMILIES}
        for key, value in row.items():
            if key in ITERATION_COLUMNS.values():
                continue
            iteration_column(key)
            family = next(
                f for f, prefixes in ITERATION_FAMILIES.items() if key.startswith(prefixes)
            )
            families[family][key] = value
        values: dict[str, Any] = {**fixed, **families}
        return cls(**values)


@dataclass(frozen=True)
class Row:
    """A row with a fixed set of columns: its fields, in order."""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def fixed_column(file: str, row: type[Row]) -> Callable[[str], str]:
    """The check of a column name of ``file``, whose rows are ``row``: the name, or an
    ``UnknownColumn`` listing the file's columns."""
    columns = tuple(f.name for f in fields(row))

    def check(name: str) -> str:
        if name not in columns:
            raise UnknownColumn(f"{file} has no column {name!r}: its columns are {columns}")
        return name

    return check


@dataclass(frozen=True)
class EpisodeRow(Row):
    """One episode of a run (``episodes.csv``)."""

    iteration: int
    episode: int
    steps: int  # generated samples (env steps) of the episode
    valid: int  # valid samples of the episode
    generated_total: int  # cumulative generated samples at the episode's end
    j1: float  # intrinsic return: the sum of the +1/-1 feasibility rewards
    j2: float  # the VLM's J2 over the episode's samples (eq. 3)
    extrinsic: float  # the VLM reward the agent got: beta * J2, summed if dense; 0 for none
    reward_total: float  # every reward the agent received in the episode (J1 + extrinsic)
    reward_last: float  # the last step's reward (its +1/-1 plus its extrinsic share)
    batch_added: int  # samples drawn into the fine-tuning batch
    hardness: float  # mean per-sample hardness under the VLM before this iteration's fine-tuning
    error_rate: float  # share of the episode's samples the VLM got wrong


@dataclass(frozen=True)
class LossRow(Row):
    """One fine-tuning step's loss (``finetune_loss.csv``), steps counted over the whole run."""

    finetune_step: int
    iteration: int
    loss: float


@dataclass(frozen=True)
class InnerValidation(Row):
    """A validation inside an iteration's fine-tuning (every F steps; MLflow only)."""

    finetune_step: int
    val_inner: float


EPISODE_COLUMNS = tuple(f.name for f in fields(EpisodeRow))
episode_column = fixed_column("episodes.csv", EpisodeRow)
loss_column = fixed_column("finetune_loss.csv", LossRow)


@dataclass(frozen=True)
class RunSummary:
    """A run's ``summary.json``: what it was, how it ended, its headline figures."""

    model: str
    arm: str
    seed: int
    profile: str
    k: int
    loop_gamma: float | None  # the agent's discount in the loop; None for an arm that never learns
    evaluate: dict[str, Any]  # the family's evaluate block
    finetune: dict[str, Any]  # the family's fine-tuning block (the run's seed is ``seed``)
    finished: bool
    stopped: str | None  # early_stopping, max_iterations, budget; None while running
    iterations: int
    generated_samples: int
    valid_samples: int
    valid_rate: float
    budget: int | None  # a budget arm's: the sac run's generated samples
    initial_test_metric: float | None
    final_test_metric: float | None
    best_val_metric: float | None
    seconds: float
    mlflow_run_id: str | None
    dataset_hashes: dict[str, str]
    external_hashes: dict[str, str] | None = None  # only where the profile names external sets

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.external_hashes is None:
            del out["external_hashes"]
        return out
