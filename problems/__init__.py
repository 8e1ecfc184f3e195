"""Problems with known answers. Each module is one problem class; ``ALL`` lists them for tests."""

from azure_sciml.problems.energy import LennardJones
from azure_sciml.problems.heat import Heat
from azure_sciml.problems.ode import NeuralODE
from azure_sciml.problems.symreg import SymbolicRegression

ALL = (Heat, NeuralODE, SymbolicRegression, LennardJones)

__all__ = ["ALL", "Heat", "LennardJones", "NeuralODE", "SymbolicRegression"]
