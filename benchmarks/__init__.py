"""envelope's benchmarks: ``python -m benchmarks run [SUITE...] [--quick] [--json OUT]``.

A suite is a module ``benchmarks/bench_NAME.py`` defining ``run(quick: bool) ->
benchmarks.report.Suite``: the runner finds it by its name, calls it in the same run
as every other suite, and writes its tables and plots into docs/benchmarks.md and
docs/benchmarks/*.png (its own block: running one suite updates only that block).
``quick=True`` must finish in a few seconds (CI runs every suite that way). Suites
measure every peer side by side in the same process run and never assert a timing.
"""
