"""The errors a simulation raises."""

from __future__ import annotations

__all__ = ["Deadlock", "ReplayDiverged", "SimulationError", "SimulationEscape"]


class SimulationError(RuntimeError):
    """Something went wrong in a simulation (not in the managers under test)."""


class Deadlock(SimulationError):
    """Handlers wait on each other in a cycle, or on something that can never come."""

    def __init__(self, message: str, chain: list[str]) -> None:
        super().__init__(message)
        self.chain = chain
        """The managers and methods of the cycle, in wait order."""


class SimulationEscape(SimulationError):
    """Code under simulation reached outside it: a thread, a socket, a sleep, the wall clock."""


class ReplayDiverged(SimulationError):
    """A replay token does not fit the run: the test drove the simulation differently."""
