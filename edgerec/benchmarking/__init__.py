"""Benchmarking (edgerec.bench): latency, throughput, memory and accuracy of an artifact in its own runtime
(latency.py: numpy + the runtime only), and PyTorch eager measured beside it (eager.py)."""
