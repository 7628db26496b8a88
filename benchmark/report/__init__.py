"""The benchmark report (SPEC section 8; the paper's section 6, Figs. 5-9), from the runs alone.

``write_report(results, model, out)`` reads every finished run of one model under
``results/runs/{model}/{arm}/seed{S}`` (the files ``rls3 run`` writes) for the three arms: ``sac``
(RLS3), ``random`` (random placement) and ``sac-dense`` (beyond the paper, its open question 2:
the same pre-trained SAC with a per-step dense VLM reward). ``random`` and ``sac-dense`` run on
the sac run's budget (same seed); results without sac-dense runs are reported with two arms. It
writes:

- ``REPORT.md``: the setting, the statistical comparison of the arms across seeds, valid rate and
  iterations per arm, the paper's qualitative claims beside what this run found, the figures;
- ``figures/*.png``: efficiency curves (Fig. 5), per-term scores before/after with cumulative term
  counts (Fig. 6), score by number of terms (Fig. 7), the concatenated fine-tuning loss (Fig. 8),
  validation with the early-stopping point (Fig. 9), valid rate and iterations per arm, the
  hardness of each arm's generated samples and the term distribution of its fine-tuning data;
- ``comparison.json`` (every number of the comparison; ``null``: not measured), ``metrics.json``
  (DVC metrics) and ``plots/*.csv`` (DVC plots) with the same figures.

The comparison, per seed and then as a mean over seeds with a Student-t confidence interval
(mean ± t_{0.975, n-1} · sd / √n; one seed gives none): the final test metric; the area under the
efficiency curve, divided by the budget (the mean test metric over the generated samples, so 0..1
like the metric); the generated samples each arm needed to reach the random arm's final metric
(same seed); the mean hardness of the generated samples and the VLM's error rate on them; valid
rate and iterations. Arms are compared by paired per-seed differences. A claim gets "supported"
or "contradicted" only from at least ``MIN_SEEDS_FOR_VERDICT`` seeds and an interval that
excludes 0; otherwise it is "inconclusive", and every verdict states its n.

The package: ``runs`` (the run files), ``stats`` (the comparison), ``claims`` (the verdicts),
``figures`` and ``markdown`` (the report itself).
"""

from __future__ import annotations

from benchmark.report.claims import (
    caveats,
    claims,
    descriptive_verdict,
    gate,
    interval_verdict,
)
from benchmark.report.figures import (
    BRACKETS,
    COLOURS,
    LINE_STYLES,
    efficiency_grid,
    fig_efficiency,
    fig_hardness,
    fig_loss,
    fig_n_terms,
    fig_term_distribution,
    fig_terms,
    fig_valid_rate,
    fig_validation,
    present_arms,
)
from benchmark.report.markdown import (
    NULL_MEANS,
    TABLE_ROWS,
    hardness_rows,
    machine,
    write_index,
    write_report,
)
from benchmark.report.runs import (
    HARDNESS_NAME,
    METRIC_NAME,
    RunLog,
    all_arms,
    complete_episode_hardness,
    load_runs,
)
from benchmark.report.stats import (
    CONFIDENCE,
    DIFF_KEYS,
    DIFFERENCES,
    INTERVAL,
    METRICS_KEY,
    MIN_SEEDS_FOR_VERDICT,
    STAT_KEYS,
    as_number,
    batch_term_counts,
    batch_term_shares,
    compare,
    fine_tuning_mean,
    format_stat,
    json_ready,
    left_right_share,
    mean_curve,
    normalised_auc,
    paired_difference,
    per_iteration,
    quiet_nan,
    samples_to_reach,
    seed_row,
    summarise,
    t_interval,
)

__all__ = [
    "BRACKETS",
    "COLOURS",
    "CONFIDENCE",
    "DIFFERENCES",
    "DIFF_KEYS",
    "HARDNESS_NAME",
    "INTERVAL",
    "LINE_STYLES",
    "METRICS_KEY",
    "METRIC_NAME",
    "MIN_SEEDS_FOR_VERDICT",
    "NULL_MEANS",
    "STAT_KEYS",
    "TABLE_ROWS",
    "RunLog",
    "all_arms",
    "as_number",
    "batch_term_counts",
    "batch_term_shares",
    "caveats",
    "claims",
    "compare",
    "complete_episode_hardness",
    "descriptive_verdict",
    "efficiency_grid",
    "fig_efficiency",
    "fig_hardness",
    "fig_loss",
    "fig_n_terms",
    "fig_term_distribution",
    "fig_terms",
    "fig_valid_rate",
    "fig_validation",
    "fine_tuning_mean",
    "format_stat",
    "gate",
    "hardness_rows",
    "interval_verdict",
    "json_ready",
    "left_right_share",
    "load_runs",
    "machine",
    "mean_curve",
    "normalised_auc",
    "paired_difference",
    "per_iteration",
    "present_arms",
    "quiet_nan",
    "samples_to_reach",
    "seed_row",
    "summarise",
    "t_interval",
    "write_index",
    "write_report",
]
