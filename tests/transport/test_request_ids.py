"""Fresh request ids: `req-<uuid4>`-shaped and unique, across counter blocks and threads."""

from __future__ import annotations

import re
import threading
import uuid

import pytest

from transport import _context
from transport._context import _new_request_id, wire_context

UUID4 = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_ids_are_uuid4_shaped_and_unique_across_blocks_and_the_counter_wrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # start just below a wrap of the 48-bit counter: blocks of 4,096 and the wrap are crossed
    start = (1 << 48) - 5000
    monkeypatch.setattr(_context, "_ids", _context._id_stream(_context._id_prefix(), start))
    ids = [_new_request_id() if i % 2 else wire_context()["request_id"] for i in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(UUID4.match(i) for i in ids)
    assert all(uuid.UUID(i[4:]).version == 4 for i in ids[:50])
    tails = [int(i[-12:], 16) for i in ids]
    assert tails[0] == (1 << 48) - 5000
    assert tails[4999] == (1 << 48) - 1
    assert tails[5000] == 0  # wrapped
    assert tails == [(tails[0] + k) % (1 << 48) for k in range(len(tails))]


def test_ids_made_by_racing_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4, timeout=10)

    def make(out: list[str], wire: bool) -> None:  # the two ways ids are drawn, racing
        barrier.wait()
        if wire:
            out.extend(wire_context()["request_id"] for _ in range(20_000))
        else:
            out.extend(_new_request_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(out, i % 2)) for i, out in enumerate(made)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [i for out in made for i in out]
    assert len(ids) == 80_000
    assert len(set(ids)) == len(ids)
    assert all(UUID4.match(i) for i in ids[::997])
