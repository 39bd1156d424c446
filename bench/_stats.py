"""Kept for the benchmarks that import it: these helpers live in `bench._harness` now."""

from __future__ import annotations

from bench._harness import freeze_startup, median_of, print_table, rss_bytes

__all__ = ["freeze_startup", "median_of", "print_table", "rss_bytes"]
