"""Benchmarks of kernelkit against its peers: ``python -m bench`` (see docs/benchmarks.md)."""
