"""salvage's benchmarks, against a real Docker engine: `make bench` (python -m benchmarks).

Every figure is a ratio against a baseline measured in the same run (median of several
runs), so that a slow or busy machine moves both sides alike. See docs/performance.md.
"""
