"""Hydra configs of the azure-sciml app (a package so Hydra finds them as pkg://azure_sciml.conf).

Importing it registers the ``fraction_of`` resolver the configs use:
``${fraction_of:0.9,${problem.steps}}`` is ``int(0.9 * problem.steps)``.
"""

from omegaconf import OmegaConf

OmegaConf.register_new_resolver(
    "fraction_of", lambda fraction, total: int(float(fraction) * int(total)), replace=True
)
