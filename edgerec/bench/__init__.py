"""Latency, throughput, memory and accuracy of an artifact, measured in its own runtime (numpy + runtime only)."""

from edgerec.bench.latency import BenchConfig, bench_artifact, timed

__all__ = ["BenchConfig", "bench_artifact", "timed"]
