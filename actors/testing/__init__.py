"""The test kit of `actors`: fixtures' building blocks, usable without pytest too.

The pytest plugin (``actors.testing._plugin``, installed as a ``pytest11`` entry
point) turns them into the fixtures ``manual_clock``, ``actor_factory``,
``cluster`` and ``leak_check``.
"""

from actors.testing._cluster import Cluster
from actors.testing._factory import ActorFactory
from actors.testing._leaks import LeakCheck, LeakError
from actors.testing._publisher import RecordingPublisher

__all__ = ["ActorFactory", "Cluster", "LeakCheck", "LeakError", "RecordingPublisher"]
