"""CURVE keys, the client-key allow-list and the loopback rule."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "KeyPair",
    "generate_keypair",
    "is_loopback",
    "load_keypair",
    "load_public_key",
    "start_authenticator",
    "write_keypair",
]

logger = logging.getLogger("transport")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair, both keys Z85-encoded (40 bytes each).

    Attributes:
        public: the public key; give it to the peers.
        secret: the secret key; keep it.
    """

    public: bytes
    secret: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public!r}, secret=<hidden>)"


def generate_keypair() -> KeyPair:
    """Generate a new CURVE key pair.

    Returns:
        the key pair.
    """
    public, secret = zmq.curve_keypair()
    return KeyPair(public, secret)


def write_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Generate a key pair and write it as ZeroMQ certificate files.

    Writes `<name>.key` (public, goes into the peers' allow-list directory) and
    `<name>.key_secret` (public and secret; keep it private).

    Returns:
        the paths of the public and the secret file.
    """
    Path(directory).mkdir(parents=True, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(directory, name)
    return Path(public_file), Path(secret_file)


def load_keypair(path: str | os.PathLike[str]) -> KeyPair:
    """Load a key pair from a `.key_secret` certificate file.

    Raises:
        ValueError: the file holds no secret key.

    Returns:
        the key pair.
    """
    public, secret = zmq.auth.load_certificate(path)
    if secret is None:
        raise ValueError(f"{path} holds no secret key")
    return KeyPair(public, secret)


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """Load the public key from a certificate file (`.key` or `.key_secret`).

    Returns:
        the Z85-encoded public key.
    """
    return zmq.auth.load_certificate(path)[0]


def is_loopback(endpoint: str) -> bool:
    """Tell whether binding `endpoint` exposes nothing beyond this host.

    `ipc://` and `inproc://` endpoints are local; `tcp://` ones are when the
    host is a loopback address or `localhost`.

    Returns:
        whether the endpoint is local to this host.
    """
    transport, _, address = endpoint.partition("://")
    if transport in {"ipc", "inproc"}:
        return True
    if transport != "tcp":
        return False
    host = address.rpartition(":")[0]
    if ";" in host:  # "source;destination" form: judge the bound address
        host = host.rpartition(";")[2]
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _KeyAllowList:
    """Credentials provider for `configure_curve_callback`: a fixed set of keys."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self.keys = frozenset(keys)

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self.keys
        if not allowed:
            logger.warning("refused a CURVE client with an unknown public key %r", key)
        return allowed


def start_authenticator(
    context: zmq.Context[zmq.Socket[bytes]],
    allowed: Iterable[bytes] | str | os.PathLike[str],
) -> ThreadAuthenticator:
    """Start a ZAP authenticator on `context` that admits only the allowed client keys.

    Args:
        context: the context of the server socket.
        allowed: Z85 public keys, or a directory of `.key` certificate files
            (read once, now).

    Returns:
        the running authenticator; stop it after closing the server socket.
    """
    auth = ThreadAuthenticator(context, log=logging.getLogger("transport.auth"))
    auth.start()
    try:
        if isinstance(allowed, str | os.PathLike):
            if not Path(allowed).is_dir():
                raise ValueError(f"allowed client key directory {allowed} does not exist")
            auth.configure_curve(domain="*", location=os.fspath(allowed))
        else:
            auth.configure_curve_callback(domain="*", credentials_provider=_KeyAllowList(allowed))
    except BaseException:
        auth.stop()
        raise
    return auth
