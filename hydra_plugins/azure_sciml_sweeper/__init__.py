"""``hydra/sweeper=filtered``: hydra-filter-sweeper's sweeper (the basic sweeper minus the jobs its
filters drop) that also says how many jobs it launches, for the app's progress lines. A Hydra
plugin lives in the ``hydra_plugins`` namespace (Hydra finds it there, and the app registers it
for editable installs, where Hydra's scan does not); its config:
``conf/hydra/sweeper/filtered.yaml``."""

from __future__ import annotations

from pathlib import Path

from hydra_plugins.filter import FilterSweeper

from azure_sciml.runs import write_json_atomic


class FilteredSweeper(FilterSweeper):
    """Writes the number of jobs to launch into ``<sweep dir>/.progress/size.json`` before the
    first batch, after Hydra saved ``multirun.yaml`` (the progress lines trust a size file only
    when it is not older than ``multirun.yaml``, so a relaunch never reads a stale count)."""

    size_file = Path(".progress", "size.json")  # in the sweep dir; azure_sciml.app.sweep reads it

    def get_job_batch(self):
        if self.batch_index == 0 and self.config is not None:
            jobs = sum(len(batch) for batch in self.overrides or [])
            write_json_atomic(Path(self.config.hydra.sweep.dir) / self.size_file, {"jobs": jobs})
        return super().get_job_batch()
