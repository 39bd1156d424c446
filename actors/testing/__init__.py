"""The test kit: run your managers under a deterministic simulator.

`Simulation` runs unmodified `Manager` subclasses (and plain pykka actors) on
one deterministic scheduler with virtual time, simulated hosts, a simulated
bridge and faults; `schedules()` lets hypothesis explore (and shrink) every
interleaving; a failing run prints a replay token for ``Simulation(replay=...)``.
"""

from actors.testing._errors import Deadlock, ReplayDiverged, SimulationError, SimulationEscape
from actors.testing._network import Faults, SimDirectory
from actors.testing._simulation import Simulation
from actors.testing._strategies import Schedule, schedules
from actors.testing._trace import Trace

__all__ = [
    "Deadlock",
    "Faults",
    "ReplayDiverged",
    "Schedule",
    "SimDirectory",
    "Simulation",
    "SimulationError",
    "SimulationEscape",
    "Trace",
    "schedules",
]
