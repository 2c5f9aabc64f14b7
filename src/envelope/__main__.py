"""``python -m envelope``: the same as the ``envelope`` command."""

from envelope.cli import main

main()
