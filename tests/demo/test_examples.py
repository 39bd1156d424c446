"""The examples in the demo's docstrings run and say what they show."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import actors.demo
import actors.demo.drivers


@pytest.mark.parametrize("module", [actors.demo, actors.demo.drivers])
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
