"""DESIGN's layering, read from the source with `ast` (nothing is imported or run).

- The one-host core (manager, periodic, clock, timer, capabilities, db, drivers, and
  every ``actors`` module they import, transitively) never imports ``transport``.
- ``transport`` imports nothing of ``actors``; beside the standard library it uses
  pykka, pyzmq and msgpack only, and pykka's private names through ``_pykka_adapter``.
- ``_pykka_adapter``, which both layers import, imports pykka and the standard
  library only.

Every import counts: top-level, inside functions and under ``TYPE_CHECKING`` (a
type-only import is still a dependency on the layer). Importing ``actors._clock``
counts as importing that module, not the ``actors`` package's ``__init__``.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE = (
    "actors._manager",
    "actors._periodic",
    "actors._clock",
    "actors._timer",
    "actors._capabilities",
    "actors.db",
    "actors._drivers",
)
"""DESIGN's one-host core; the modules they import join it."""

TRANSPORT_MAY_IMPORT = frozenset({"transport", "_pykka_adapter", "pykka", "zmq", "msgpack"})
"""What transport modules may import beside the standard library."""

PLUGINS = {"transport.mypy_plugin": frozenset({"mypy"})}
"""Modules only a tool loads, and what each may import for it."""


def module_file(root: Path, name: str) -> Path | None:
    """The source file of module `name` under `root`, if it is one of ours."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(root: Path, name: str) -> set[str]:
    """Every module the source of `name` imports, wherever the import statement is."""
    path = module_file(root, name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            submodules = [
                f"{module}.{alias.name}"
                for alias in node.names
                if module_file(root, f"{module}.{alias.name}") is not None
            ]
            if len(submodules) < len(node.names):  # `from mod import name`: mod itself
                found.add(module)
            found.update(submodules)  # `from pkg import mod`: mod, not pkg's __init__
    return found


def top(name: str) -> str:
    return name.partition(".")[0]


def core_violations(root: Path, core: tuple[str, ...] = CORE) -> list[str]:
    """Each import of transport reachable from the core, as the chain that reaches it."""
    seen = {name: [name] for name in core}
    todo = list(core)
    broken = []
    while todo:
        name = todo.pop()
        for imported in sorted(imported_modules(root, name)):
            chain = [*seen[name], imported]
            if top(imported) == "transport":
                broken.append(" -> ".join(chain))
            elif top(imported) == "actors" and imported not in seen:
                if module_file(root, imported) is None:  # a name, not a module
                    continue
                seen[imported] = chain
                todo.append(imported)
    return sorted(broken)


def package_modules(root: Path, package: str) -> list[str]:
    """Every module of `package` under `root`, by dotted name."""
    names = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def foreign_imports(root: Path, package: str, allowed: frozenset[str]) -> list[str]:
    """Imports by `package`'s modules of anything outside the stdlib and `allowed`."""
    broken = []
    for name in package_modules(root, package):
        extra = PLUGINS.get(name, frozenset())
        for imported in sorted(imported_modules(root, name)):
            first = top(imported)
            if first in sys.stdlib_module_names or first in allowed or first in extra:
                continue
            broken.append(f"{name} imports {imported}")
    return broken


def test_the_one_host_core_never_imports_transport() -> None:
    assert core_violations(ROOT) == []


def test_transport_imports_only_pykka_zmq_msgpack_and_the_adapter() -> None:
    assert foreign_imports(ROOT, "transport", TRANSPORT_MAY_IMPORT) == []


def test_the_pykka_adapter_imports_pykka_only() -> None:
    assert package_modules(ROOT, "_pykka_adapter") == ["_pykka_adapter"]
    assert foreign_imports(ROOT, "_pykka_adapter", frozenset({"pykka"})) == []


def test_the_core_reaches_the_mailbox_and_the_adapter() -> None:
    """The walk follows the core's own imports (so it is not checking nothing)."""
    reached = imported_modules(ROOT, "actors._manager") | imported_modules(ROOT, "actors._mailbox")
    assert {"actors._mailbox", "actors._awaitable", "_pykka_adapter"} <= reached


def test_every_top_level_package_installs() -> None:
    """The layers and the adapter they share are all in the distribution (not only in
    a checkout): each is matched by pyproject's package list."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in ("tests", "bench")
    }
    assert {"actors", "transport", "_pykka_adapter"} <= packages
    for package in sorted(packages):
        assert any(fnmatch.fnmatchcase(package, pattern) for pattern in find["include"]), package
        assert (ROOT / package / "py.typed").is_file(), package


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def test_an_indirect_type_only_import_of_transport_is_caught(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "actors/__init__.py": "from actors._clock import Clock\n",
            "actors/_clock.py": "from actors import _helper\nclass Clock: ...\n",
            "actors/_helper.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from transport._bridge import Bridge\n"
            ),
            "actors/_service.py": "import transport\n",  # not in the core: allowed
        },
    )
    assert core_violations(tmp_path, ("actors._clock",)) == [
        "actors._clock -> actors._helper -> transport._bridge"
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from actors._node import Node\n", "transport._x imports actors._node"),
        ("def f():\n    import sqlalchemy\n", "transport._x imports sqlalchemy"),
        ("from . import _y\n", None),
        ("import zmq, msgpack\nfrom pykka import Future\nimport json\n", None),
    ],
)
def test_a_foreign_import_in_transport_is_caught(
    tmp_path: Path, source: str, message: str | None
) -> None:
    _write(
        tmp_path, {"transport/__init__.py": "", "transport/_x.py": source, "transport/_y.py": ""}
    )
    expected = [message] if message else []
    assert foreign_imports(tmp_path, "transport", TRANSPORT_MAY_IMPORT) == expected
