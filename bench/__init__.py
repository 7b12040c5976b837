"""Benchmarks; run them as modules from the repository root, e.g.::

.venv/bin/python -m bench.all            # every benchmark, then BENCHMARKS.md
.venv/bin/python -m bench.propagation --verifiers 4
.venv/bin/python -m bench.verify_cost
"""
