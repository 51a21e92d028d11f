"""Benchmarks: each prints JSON with its own baseline measured in the same run."""
