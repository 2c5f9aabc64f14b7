"""The package version: the Rust workspace's, compiled into the native module."""

from envelope._native import __version__

__all__ = ["__version__"]
