"""Child-process entry points: ``serve KIND [ARG...]`` and ``client KIND OPTIONS_JSON``.

``client`` prints one line ``RESULT {json}``: ``{"samples": {measure: [per rep]}}``
or ``{"error": "why"}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any

from bench._peers.common import Unavailable, measure

MODULES = {
    "ours": "ours",
    "floor": "floor",
    "pyro": "pyro",
    "pyro-msgpack": "pyro",
    "pyro-serpent": "pyro",
    "zerorpc": "zrpc",
    "ray": "rayactor",
    "oslo": "oslo",
}
"""Kind -> module of `bench._peers`."""


def _client(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        module: Any = importlib.import_module(f"bench._peers.{MODULES[kind]}")
        with module.open_client(kind, options) as client:
            samples = measure(client, options["reps"], options["budget"])
            return {"samples": samples, "notes": client.notes}
    except Unavailable as exc:
        return {"error": str(exc)}
    except ImportError as exc:
        return {"error": f"not installed ({exc.name})"}
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"failed: {type(exc).__name__}: {exc}"[:200]}


def main(argv: list[str]) -> None:
    role, kind, *rest = argv
    if role == "serve":
        module: Any = importlib.import_module(f"bench._peers.{MODULES[kind]}")
        module.serve(rest)
        return
    result = _client(kind, json.loads(rest[0]))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
