"""Hydra configs of the azure-sciml app (a package so Hydra finds them as pkg://azure_sciml.conf).

Importing it registers the ``fraction_of`` resolver the configs use:
``${fraction_of:0.9,${problem.steps}}`` is ``int(0.9 * problem.steps)``, the ``equal`` resolver
(``save_plot: ${equal:${seed},0}``: a sweep draws the figure of seed 0 only, the one its report
shows), and ``optimizer/_open``,
an empty node that accepts any key: every optimizer config starts ``defaults: [_open, _self_]``, so
``optimizer.KEY=value`` sets any constructor argument without a ``+`` (a config holds only what
the app sets; the defaults stay in the class), and a key the constructor does not take fails in
the app's check as one line naming it (``azure_sciml.app.checks.check_arguments``). Every
``refine/*.yaml`` takes the same node at ``refine.optimizer`` (``- /optimizer@optimizer: _open``).
"""

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

OmegaConf.register_new_resolver(
    "fraction_of", lambda fraction, total: int(float(fraction) * int(total)), replace=True
)
OmegaConf.register_new_resolver("equal", lambda left, right: left == right, replace=True)

ConfigStore.instance().store(
    group="optimizer", name="_open", node=OmegaConf.create({}, flags={"struct": False})
)
