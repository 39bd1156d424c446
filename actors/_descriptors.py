"""File descriptors a node needs: the soft limit raised toward the hard one at start.

With ``own_sockets`` (the default) each manager holds three descriptors of its
own: its socket's ZeroMQ signal, its listening TCP socket and the eventfd that
wakes its thread for local messages. A thousand managers need more than the
1,024 that many systems give a process by default (the soft ``RLIMIT_NOFILE``),
so the node raises its soft limit, up to the hard limit, before it binds
anything; when even the hard limit is too low it stops with an error that says
what to change.
"""

from __future__ import annotations

import logging
import resource

from actors._config import ConfigError

__all__ = ["PER_OWN_SOCKET", "ensure_descriptors", "needed_descriptors"]

logger = logging.getLogger(__name__)

PER_OWN_SOCKET = 3
"""Descriptors each manager holds with its own socket."""
_BASE = 256  # the database, the bridge, client connections, logs, the metrics server


def needed_descriptors(managers: int, *, own_sockets: bool) -> int:
    """About how many descriptors a node serving `managers` managers needs."""
    return _BASE + (PER_OWN_SOCKET * managers if own_sockets else 0)


def ensure_descriptors(needed: int) -> int:
    """Make sure this process may open `needed` descriptors; return its soft limit.

    Raises the soft ``RLIMIT_NOFILE`` to `needed` when it is lower (never
    lowers it), within the hard limit.

    Raises:
        ConfigError: the hard limit is below `needed`.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    if soft == infinity or soft >= needed:
        return soft
    if hard != infinity and hard < needed:
        raise ConfigError(
            f"this node needs about {needed} file descriptors ({PER_OWN_SOCKET} per manager "
            f"with own_sockets), but the process may open at most {hard} (the hard "
            "RLIMIT_NOFILE): raise it (LimitNOFILE= in the systemd unit, or ulimit -Hn), "
            "serve fewer managers per node, or set own_sockets = false"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    logger.info("raised the open-file limit from %d to %d (hard limit %s)", soft, needed, hard)
    return needed
