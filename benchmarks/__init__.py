"""Benchmarks of the indicator computation (see benchmarks/README.md)."""
