"""Coverage-guided fuzzing of the binding and parsers with atheris (libFuzzer for Python).

``python -m fuzz.run --seconds N`` runs every target in :mod:`fuzz.targets` for N seconds
from the seed corpora in ``fuzz/corpus/<target>/`` and fails on any crash or on any
exception a target does not document.
"""
