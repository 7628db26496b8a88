"""The benchmark report (spec section 8; the paper's section 6, Figs. 5-9), from the runs alone.

``write_report(results, model, out, margin)`` reads every finished run of one model under
``results/runs/{model}/{arm}/seed{S}`` (the files ``rls3 run`` writes) for the five arms
(``benchmark/arms.py``): ``sac`` (RLS3), ``random`` (random placement), ``sac-dense`` (beyond the
paper, its open question 2: the same pre-trained SAC with a per-step dense VLM reward), and two
ablations, ``sac-nofeedback`` (the same agent without the VLM's reward: feasibility alone) and
``random-hardest`` (random placement, the hardest samples drawn into the batch: hard-sample
selection without RL). Every arm but sac runs on the sac run's budget (same seed); an arm
without runs (e.g. in older results) is left out of the tables and figures, and a difference
that needs it is "not measured". ``margin`` is the equivalence margin delta in the model's
metric (the params key ``profiles.<profile>.<model>.margin``). It writes:

- ``REPORT.md``: the setting (delta and where it was set), the statistical comparison of the
  arms across seeds and every paired difference, the decomposition of the headline, the final
  test metric per spatial term and by number of terms, each arm's reward balance, valid rate and
  iterations per arm, the paper's qualitative claims beside what this run found, the figures;
- ``figures/*.png``: efficiency curves (Fig. 5), per-term scores before/after with cumulative term
  counts (Fig. 6), score by number of terms (Fig. 7), the concatenated fine-tuning loss (Fig. 8),
  validation with each seed's stopping point (Fig. 9), valid rate and iterations per arm, the
  hardness of each arm's generated samples and the term distribution of its fine-tuning data;
- ``comparison.json`` (every number of the comparison; ``null``: not measured), ``metrics.json``
  (DVC metrics) and ``plots/*.csv`` (DVC plots) with the same figures.

The comparison, per seed and then as a mean over seeds with a Student-t confidence interval
(mean ± t_{0.975, n-1} · sd / √n; one seed gives none): the final test metric; the area under the
efficiency curve, divided by the budget (the mean test metric over the generated samples, so 0..1
like the metric); the generated samples each arm needed to reach the random arm's final metric
(same seed); the mean hardness of the generated samples and the VLM's error rate on them; valid
rate and iterations; the final test metric per spatial term and by number of terms; the reward
balance (per episode J1, J2, the VLM reward the agent received, and the VLM's share of the
return). Arms are compared by paired per-seed differences (``DIFFERENCES``), each with:

- a verdict of four, each stating its n: "supported" or "contradicted" only from at least
  ``MIN_SEEDS_FOR_VERDICT`` paired seeds and a 95% interval above or below 0; "equivalent within
  ±delta" from as many seeds when statsmodels' two one-sided tests (``ttost_paired``, alpha 0.05
  each) reject a difference of delta or more, i.e. the 90% paired interval lies inside ±delta;
  otherwise "inconclusive";
- the minimum detectable difference (MDE): the effect a paired t test over these n seeds finds
  with 80% power at two-sided alpha 0.05 (statsmodels' ``TTestPower``), times the observed sd of
  the paired differences; in the final metric and the area, given the margin delta, the paired
  seeds whose MDE would be delta at that sd (``seeds_for_margin``);
- in the model's metric, the probability of improvement (PoI): rliable's P(X > Y) + 0.5 P(X = Y)
  over every run of one arm against every run of the other, with a 95% stratified-bootstrap
  interval from a fixed seed.

The decomposition (``DECOMPOSITION``) takes the headline sac - random apart: feasibility
(sac-nofeedback - random), the VLM's feedback (sac - sac-nofeedback), hard-sample selection
without RL (random-hardest - random), the dense reward (sac-dense - sac), and the headline itself.

The package: ``runs`` (the run files), ``stats`` (the comparison), ``claims`` (the verdicts),
``figures`` and ``markdown`` (the report itself).
"""

from __future__ import annotations

from benchmark.report.claims import (
    caveats,
    claims,
    decomposition,
    descriptive_verdict,
    gate,
    interval_verdict,
    pair_verdict,
    term_verdicts,
)
from benchmark.report.figures import (
    BRACKETS,
    COLOURS,
    LINE_STYLES,
    MARKERS,
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
    seed_ranges,
    stop_groups,
)
from benchmark.report.markdown import (
    NULL_MEANS,
    TABLE_ROWS,
    hardness_rows,
    write_index,
    write_report,
)
from benchmark.report.runs import (
    RunLog,
    all_arms,
    complete_episode_hardness,
    load_runs,
)
from benchmark.report.stats import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    DECOMPOSITION,
    DIFF_KEYS,
    DIFFERENCES,
    EQUIVALENCE_ALPHA,
    INTERVAL,
    METRIC_KEYS,
    METRICS_KEY,
    MIN_SEEDS_FOR_VERDICT,
    N_TERMS,
    REWARD_KEYS,
    STAT_KEYS,
    TERM_KEYS,
    as_number,
    batch_term_counts,
    batch_term_shares,
    compare,
    detectable_difference,
    equivalence_p,
    fine_tuning_mean,
    format_stat,
    json_ready,
    left_right_share,
    mean_curve,
    normalised_auc,
    paired_difference,
    per_iteration,
    probability_of_improvement,
    quiet_nan,
    reward_balance,
    samples_to_reach,
    seed_row,
    seeds_for_margin,
    summarise,
    t_interval,
)

__all__ = [
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "BRACKETS",
    "COLOURS",
    "CONFIDENCE",
    "DECOMPOSITION",
    "DIFFERENCES",
    "DIFF_KEYS",
    "EQUIVALENCE_ALPHA",
    "INTERVAL",
    "LINE_STYLES",
    "MARKERS",
    "METRICS_KEY",
    "METRIC_KEYS",
    "MIN_SEEDS_FOR_VERDICT",
    "NULL_MEANS",
    "N_TERMS",
    "REWARD_KEYS",
    "STAT_KEYS",
    "TABLE_ROWS",
    "TERM_KEYS",
    "RunLog",
    "all_arms",
    "as_number",
    "batch_term_counts",
    "batch_term_shares",
    "caveats",
    "claims",
    "compare",
    "complete_episode_hardness",
    "decomposition",
    "descriptive_verdict",
    "detectable_difference",
    "efficiency_grid",
    "equivalence_p",
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
    "mean_curve",
    "normalised_auc",
    "pair_verdict",
    "paired_difference",
    "per_iteration",
    "present_arms",
    "probability_of_improvement",
    "quiet_nan",
    "reward_balance",
    "samples_to_reach",
    "seed_ranges",
    "seed_row",
    "seeds_for_margin",
    "stop_groups",
    "summarise",
    "t_interval",
    "term_verdicts",
    "write_index",
    "write_report",
]
