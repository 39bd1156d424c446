"""The typing check: mypy (strict, with `transport.mypy_plugin`) on sample files.

`samples/typed_ok.py` must pass; in `samples/typed_errors.py` every line marked
``# E: <message>`` must get exactly that error, and no other line any error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "mypy.ini"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*?)(?:  \[[a-z-]+\])?$")


def run_mypy(*files: Path) -> list[tuple[str, int, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--no-error-summary",
         *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    errors = []
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors.append((Path(match["file"]).name, int(match["line"]), match["message"]))
    return errors


def expected_errors(path: Path) -> list[tuple[str, int, str]]:
    return [
        (path.name, number, line.split("# E: ", 1)[1].strip())
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "# E: " in line
    ]


def test_typed_proxies_check_arguments_and_results() -> None:
    ok, bad = HERE / "samples" / "typed_ok.py", HERE / "samples" / "typed_errors.py"
    expected = expected_errors(bad)
    assert len(expected) >= 10
    errors = run_mypy(ok, bad)
    assert [e for e in errors if e[0] == ok.name] == []
    reported = [e for e in errors if e[0] == bad.name]
    missing = [e for e in expected if not any(r[1] == e[1] and e[2] in r[2] for r in reported)]
    unexpected = [r for r in reported if not any(r[1] == e[1] for e in expected)]
    assert missing == []
    assert unexpected == []
