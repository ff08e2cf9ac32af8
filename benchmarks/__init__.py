"""Reproducible performance runs of earful; `python -m benchmarks` (see README.md here)."""
