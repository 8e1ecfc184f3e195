"""Problems with known answers. Each module is one problem class; ``ALL`` lists them for tests."""

from azure_sciml.problems.classify import Digits, TwoMoons
from azure_sciml.problems.convection import Convection, Reaction
from azure_sciml.problems.energy import LennardJones
from azure_sciml.problems.heat import Heat
from azure_sciml.problems.ode import NeuralODE
from azure_sciml.problems.oscillator import Oscillator
from azure_sciml.problems.rugged import Ackley, Levy, Rastrigin, Schwefel
from azure_sciml.problems.symreg import SymbolicRegression
from azure_sciml.problems.two_d import AckleyN2, Adjiman, Brent, Himmelblau, Rosenbrock

ALL = (Heat, NeuralODE, SymbolicRegression, LennardJones, TwoMoons, Digits)
ALL += (Himmelblau, AckleyN2, Adjiman, Brent, Rosenbrock, Oscillator)
ALL += (Convection, Reaction)
ALL += (Rastrigin, Ackley, Schwefel, Levy)

__all__ = ["ALL", "Digits", "Heat", "LennardJones", "NeuralODE", "SymbolicRegression", "TwoMoons"]
__all__ += ["AckleyN2", "Adjiman", "Brent", "Himmelblau", "Oscillator", "Rosenbrock"]
__all__ += ["Convection", "Reaction"]
__all__ += ["Ackley", "Levy", "Rastrigin", "Schwefel"]
