"""pykka's private names that the runtime relies on still behave as we use them.

A pykka release that changes one fails here, naming the hook (_pykka_adapter/__init__.py).
"""

from __future__ import annotations

from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import _pykka_adapter as _pykka


@pytest.mark.parametrize("hook", _pykka.HOOKS, ids=lambda hook: hook.name)
def test_private_pykka_hook_still_holds(hook: _pykka.Hook) -> None:
    try:
        hook.probe()
    except Exception as exc:
        pytest.fail(
            f"pykka {metadata.version('pykka')} changed the private hook {hook.name!r}, "
            f"used by {hook.used_by}: {type(exc).__name__}: {exc}. Adapt "
            "_pykka_adapter/__init__.py and its users, then widen the pin in pyproject.toml."
        )


def test_check_hooks_names_a_broken_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise AssertionError("gone")

    fake = _pykka.Hook("pykka._made_up", "nothing", broken)
    monkeypatch.setattr(_pykka, "HOOKS", (*_pykka.HOOKS, fake))
    assert _pykka.check_hooks() == ["pykka._made_up (nothing): AssertionError: gone"]


def test_installed_pykka_is_within_the_pin() -> None:
    pins = [
        Requirement(line)
        for line in metadata.requires("actors") or []
        if Requirement(line).name == "pykka"
    ]
    assert len(pins) == 1
    pin = pins[0].specifier
    assert str(pin) == str(Requirement(f"pykka{_pykka.PYKKA_SUPPORTED}").specifier)
    assert pin.contains(Version(metadata.version("pykka")))
    assert not pin.contains(Version("5.0")), "pykka needs an upper bound below 5"


def test_a_renamed_pykka_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a pykka release renamed Actor._handle_receive: the probe names it."""
    import pykka  # noqa: PLC0415

    monkeypatch.delattr(pykka.Actor, "_handle_receive")
    broken = _pykka.check_hooks()
    assert any(line.startswith("pykka.Actor._handle_receive ") for line in broken), broken
