"""The ``envelope`` command line (a front end over the library and the settings model)."""

from envelope.cli._app import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
