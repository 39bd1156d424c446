"""A module whose import fails, for the config checks (never imported by the tests' code)."""

raise RuntimeError("this module cannot be imported\nsecond line")
