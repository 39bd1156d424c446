"""Every ``.. code-block:: python`` in README.rst and docs/*.rst runs as written.

Each block is written to a file in a fresh temporary directory and run there as a standalone
script in its own interpreter: it must exit 0 by itself within ``TIMEOUT`` seconds. A block
that hangs (non-daemon threads left running) or raises fails with its output shown.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
_DIRECTIVE = re.compile(
    r"^(?P<indent>\s*)\.\.\s+(?:code-block|code|sourcecode)::\s*python3?\s*$"
)


@dataclass(frozen=True)
class Block:
    """One python code block: where it is and its dedented source."""

    path: Path
    line: int  # 1-based line of the directive
    source: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The ``code-block:: python`` blocks of one reStructuredText file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            i += 1
            continue
        start = i
        outer = len(match.group("indent"))
        i += 1
        # Directive options (":linenos:" and such) come before the first blank line.
        while i < len(lines) and lines[i].strip().startswith(":"):
            i += 1
        body: list[str] = []
        while i < len(lines):
            text = lines[i]
            if text.strip() and len(text) - len(text.lstrip()) <= outer:
                break
            body.append(text)
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        indent = min(len(t) - len(t.lstrip()) for t in body if t.strip()) if body else 0
        source = "\n".join(t[indent:] for t in body) + "\n"
        blocks.append(Block(path, start + 1, source))
    return blocks


def _documents() -> list[Path]:
    return [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]


ALL_BLOCKS = [block for doc in _documents() for block in extract_blocks(doc)]


def test_extractor_finds_blocks_and_their_bodies(tmp_path: Path) -> None:
    doc = tmp_path / "x.rst"
    doc.write_text(
        "Title\n=====\n\n.. code-block:: python\n   :caption: c\n\n    a = 1\n\n    b = a\n"
        "Text\n\n.. code-block:: console\n\n    $ ls\n\n- item\n\n  .. code-block:: python\n\n"
        "     print(2)\n\nafter\n\n.. code:: python3\n\n   x = 3\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(doc)
    assert [(b.line, b.source) for b in blocks] == [
        (4, "a = 1\n\nb = a\n"), (18, "print(2)\n"), (24, "x = 3\n"),
    ]


def test_readme_has_python_blocks() -> None:
    assert any(b.path.name == "README.rst" for b in ALL_BLOCKS)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_code_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACTORS_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout) + _text(exc.stderr)
        pytest.fail(f"{block.id}: still running after {TIMEOUT:.0f} s\n{block.source}\n{out}")
    assert done.returncode == 0, (
        f"{block.id}: exit code {done.returncode}\n--- source\n{block.source}"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")
