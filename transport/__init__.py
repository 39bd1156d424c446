"""The ZeroMQ bridge: call pykka actors in other processes and on other hosts.

Serve actors with a `Bridge`; reach them with `connect(endpoint).proxy(name)`,
which behaves like a pykka `ActorProxy`. The wire format is msgpack; see
docs/protocol.rst.
"""

import logging

from transport._bridge import Bridge
from transport._connection import Connection, connect
from transport._context import RequestContext, current_context, use_context
from transport._errors import (
    ConnectionClosed,
    InvalidRequest,
    MessageTooLarge,
    MessagingError,
    MessagingTimeout,
    NoSuchMethod,
    Overloaded,
    RemoteError,
    UnknownActor,
    UnsupportedVersion,
)
from transport._fanout import fanout_cast
from transport._flow import DEFAULT_MAILBOX_LIMIT
from transport._future import RemoteFuture
from transport._protocol import parse_version, version_is_compatible
from transport._proxy import Description, RemoteProxy
from transport._security import (
    KeyPair,
    generate_keypair,
    load_keypair,
    load_public_key,
    write_keypair,
)
from transport._stats import BridgeTraffic

__all__ = [
    "DEFAULT_MAILBOX_LIMIT",
    "Bridge",
    "BridgeTraffic",
    "Connection",
    "ConnectionClosed",
    "Description",
    "InvalidRequest",
    "KeyPair",
    "MessageTooLarge",
    "MessagingError",
    "MessagingTimeout",
    "NoSuchMethod",
    "Overloaded",
    "RemoteError",
    "RemoteFuture",
    "RemoteProxy",
    "RequestContext",
    "UnknownActor",
    "UnsupportedVersion",
    "connect",
    "current_context",
    "fanout_cast",
    "generate_keypair",
    "load_keypair",
    "load_public_key",
    "parse_version",
    "use_context",
    "version_is_compatible",
    "write_keypair",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
