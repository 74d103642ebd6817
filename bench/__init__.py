"""Benchmarks against mediagen's targets, each reported as a ratio to a baseline measured in the same run."""
