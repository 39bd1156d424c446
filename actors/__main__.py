"""``python -m actors``: the same as the ``actors`` command."""

from actors.cli import main

main()
