"""Harnesses shared by the test suite and the benchmarks (crash recovery, load)."""
