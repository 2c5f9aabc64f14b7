"""The ``envelope`` command line (a front end over the library and the settings model)."""

from envelope.cli._main import (
    EXIT_CONFIG,
    EXIT_DECRYPT,
    EXIT_IO,
    EXIT_KMS,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
    run,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_DECRYPT",
    "EXIT_IO",
    "EXIT_KMS",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "run",
]
