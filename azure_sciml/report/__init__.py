"""``azure-sciml-report DIR``: aggregate every ``result.json`` below DIR (one run or a sweep), or
DIR's compact run table ``runs.jsonl`` when it has no run dirs (a results page in docs/results).

Writes into DIR: ``report.md`` (provenance, verdict per problem, targets, tables, figures),
``report.csv`` (median, quartiles, min and max of every quantity per problem and optimizer),
``comparison.csv`` (paired comparison with the baseline, Adam), ``convergence.png`` and, from run
dirs, ``runs.jsonl`` (one compact record per run, from which the report can be rebuilt) and
``runs.csv`` (a flat view of it). ``--export DEST`` writes a results page; ``--out`` writes
elsewhere. :class:`ReportCallback` runs it at the end of a multirun (``hydra.callbacks`` in
``config.yaml``).

Modules: :mod:`~azure_sciml.report.load` (run dirs and the table), ``stats`` (summaries over
seeds), ``paired`` (the verdict), ``targets``, ``figures``, ``tables`` and ``render`` (the text),
``cli`` (the command, the callback, export).

Honesty rules: metrics are summarised by median and quartiles over seeds; the verdict pairs runs
with the baseline by (problem, seed) on the headline metric (lower is better) and tests them with
the Wilcoxon signed-rank test (:mod:`~azure_sciml.report.paired`: the one verdict of the package,
the dashboard and the benchmarks use it too); diverged runs are scored at the weights they
stopped at and flagged; failed runs and job dirs without a ``result.json`` (missing) are counted
and listed, never averaged.
"""

from azure_sciml.report.cli import ReportCallback, main, write_report
from azure_sciml.report.targets import check_target  # the app's tests check experiments' targets

__all__ = ["ReportCallback", "check_target", "main", "write_report"]
