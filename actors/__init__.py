"""OpenStack-style managers as pykka actors.

The public names of the one-host runtime; ``actors.db`` holds the data layer.
"""

import logging

from actors._capabilities import (
    BackendState,
    CapabilityPublisher,
    CapabilityReport,
    CapabilityStore,
    LocalPublisher,
)
from actors._clock import Clock, ManualClock, MonotonicClock
from actors._config import ConfigError, NodeConfig
from actors._discovery import Directory, RemotePublisher, RPCVersionCapError, ServiceUnavailable
from actors._drivers import DriverNotFound, create_driver, load_driver
from actors._manager import Manager, SchedulerDependentManager
from actors._node import Node
from actors._periodic import DEFAULT_INTERVAL, InvalidPeriodicTaskArg, periodic_task
from actors._service import Service, ServiceStartError
from actors._timer import Tick, TimerActor

__all__ = [
    "DEFAULT_INTERVAL",
    "BackendState",
    "CapabilityPublisher",
    "CapabilityReport",
    "CapabilityStore",
    "Clock",
    "ConfigError",
    "Directory",
    "DriverNotFound",
    "InvalidPeriodicTaskArg",
    "LocalPublisher",
    "Manager",
    "ManualClock",
    "MonotonicClock",
    "Node",
    "NodeConfig",
    "RPCVersionCapError",
    "RemotePublisher",
    "SchedulerDependentManager",
    "Service",
    "ServiceStartError",
    "ServiceUnavailable",
    "Tick",
    "TimerActor",
    "create_driver",
    "load_driver",
    "periodic_task",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
