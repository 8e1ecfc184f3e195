"""The run-length protocol: how the driver of a run tells an optimizer how long the run is.

Azure's annealing phase is 90% of the run, so Azure needs the run's length. Whoever knows it
hands it over after building the optimizer and before its first step, with one call::

    opt = make_optimizer(params)              # any factory: a class, a partial, a lambda
    hand_over_run_length(opt, total_steps)    # opt.set_run_length(total_steps), if it has one

:func:`azure_sciml.fit` does so with its budget (``steps``, else ``problem.steps``), and
:class:`~azure_sciml.chain.Chain` with each phase's share of its own. An optimizer that has a use
for the length defines ``set_run_length(total_steps: int) -> None`` (:class:`RunLengthAware`):
:class:`~azure_sciml.Azure` (unless its constructor got ``total_steps`` or ``sa_steps``: what you
give wins) and ``Chain`` (unless it got ``total_steps``). torch's optimizers have no such method
and need none. Azure built without any length anneals for 1000 steps and warns at its first step.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["RunLengthAware", "hand_over_run_length"]


@runtime_checkable
class RunLengthAware(Protocol):
    """An optimizer that wants the run's length (in ``step`` calls) before its first step."""

    def set_run_length(self, total_steps: int) -> None: ...


def hand_over_run_length(optimizer: object, total_steps: int) -> bool:
    """Tell ``optimizer`` the run is ``total_steps`` steps long if it is :class:`RunLengthAware`;
    returns whether it was."""
    if not isinstance(optimizer, RunLengthAware):
        return False
    optimizer.set_run_length(total_steps)
    return True
