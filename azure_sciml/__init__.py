"""azure_sciml: the Azure optimizer (simulated annealing + Adam) and honest SciML comparisons.

``import azure_sciml`` needs only torch: problems (``azure_sciml.problems``), the Hydra app
(``azure_sciml.app``) and the report (``azure_sciml.report``) are imported on demand.
"""

from azure_sciml.bfgs import BFGS
from azure_sciml.chain import Chain
from azure_sciml.optim import Azure
from azure_sciml.train import FitResult, LossProblem, NonFiniteLoss, Problem, fit

__all__ = ["Azure", "BFGS", "Chain", "FitResult", "LossProblem", "NonFiniteLoss", "Problem", "fit"]
__version__ = "0.1.0"
