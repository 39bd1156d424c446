"""The test kit: run your managers under a deterministic simulator, or for real.

`Simulation` runs unmodified `Manager` subclasses (and plain pykka actors) on
one deterministic scheduler with virtual time, simulated hosts, a simulated
bridge and faults; `schedules()` lets hypothesis explore (and shrink) every
interleaving; a failing run prints a replay token for ``Simulation(replay=...)``.

The fixtures' building blocks work without pytest too: `ActorFactory`
(managers started with test dependencies), `Cluster` (real node stacks over
ZeroMQ on loopback), `LeakCheck`. The pytest plugin (``actors.testing._plugin``,
installed as a ``pytest11`` entry point) turns them into the fixtures
``manual_clock``, ``actor_factory``, ``cluster``, ``leak_check`` and ``sim``.
"""

from actors.testing._cluster import Cluster
from actors.testing._errors import Deadlock, ReplayDiverged, SimulationError, SimulationEscape
from actors.testing._factory import ActorFactory
from actors.testing._leaks import LeakCheck, LeakError
from actors.testing._network import Faults, SimDirectory
from actors.testing._publisher import RecordingPublisher
from actors.testing._simulation import Simulation
from actors.testing._strategies import Schedule, schedules
from actors.testing._trace import Trace

__all__ = [
    "ActorFactory",
    "Cluster",
    "Deadlock",
    "Faults",
    "LeakCheck",
    "LeakError",
    "RecordingPublisher",
    "ReplayDiverged",
    "Schedule",
    "SimDirectory",
    "Simulation",
    "SimulationError",
    "SimulationEscape",
    "Trace",
    "schedules",
]
