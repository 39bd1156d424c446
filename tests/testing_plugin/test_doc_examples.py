"""Every fixture example of docs/testing.rst runs: test files through pytest, the rest as is.

The examples are read from the page itself, so the page and this test cannot drift apart.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "testing.rst"  # "Testing your managers": the simulator, then the fixtures
_DIRECTIVE = re.compile(r"^\.\. code-block:: python\s*$")
_FIXTURES = ("manual_clock", "actor_factory", "cluster", "leak_check")


def python_blocks(text: str) -> list[str]:
    """The bodies of the page's top-level ``code-block:: python`` directives, dedented."""
    blocks: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _DIRECTIVE.match(line):
            continue
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


BLOCKS = python_blocks(PAGE.read_text(encoding="utf-8"))
TEST_FILES = [b for b in BLOCKS if "def test_" in b and any(f in b for f in _FIXTURES)]
SCRIPTS = [b for b in BLOCKS if "def test_" not in b and "actors.testing import ActorFactory" in b]


def test_the_page_has_test_files_and_scripts() -> None:
    assert len(TEST_FILES) >= 3
    assert len(SCRIPTS) >= 1


def test_the_example_test_files_pass_under_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(**{f"test_doc_{i}": src for i, src in enumerate(TEST_FILES)})
    result = pytester.runpytest()
    expected = sum(len(re.findall(r"^def test_", src, re.MULTILINE)) for src in TEST_FILES)
    result.assert_outcomes(passed=expected)


@pytest.mark.parametrize("source", SCRIPTS)
def test_the_example_scripts_run(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(source, str(PAGE), "exec"), {"__name__": "doc_example"})
    assert capsys.readouterr().out.strip().endswith("no leaks")
