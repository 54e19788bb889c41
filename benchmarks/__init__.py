"""Benchmarks: ``python -m benchmarks`` (or ``make bench``) measures and rewrites BENCHMARKS.md's core section."""
