"""``azure-sciml-report DIR``: aggregate every ``result.json`` below DIR (one run or a sweep).

Writes into DIR: ``report.md`` (verdict per problem, targets, tables, figures), ``report.csv``
(median, quartiles, min and max of every quantity per problem and optimizer), ``comparison.csv``
(paired comparison with the baseline, Adam), ``runs.csv`` (one row per run) and
``convergence.png``.
:class:`ReportCallback` runs it at the end of a multirun (``hydra.callbacks`` in ``config.yaml``).

Honesty rules: metrics are summarised by median and quartiles over seeds; the verdict pairs runs
with the baseline by (problem, seed) on the headline metric (lower is better) and tests them with
the Wilcoxon signed-rank test (scipy) or else the exact sign test; diverged runs are scored at the
weights they stopped at and flagged; failed runs and job dirs without a ``result.json`` (missing)
are counted and listed, never averaged.
"""

from azure_sciml.report.cli import ReportCallback, main, write_report
from azure_sciml.report.targets import check_target  # the app's tests check experiments' targets

__all__ = ["ReportCallback", "check_target", "main", "write_report"]
