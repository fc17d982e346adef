"""Benchmarks: each `*_bench.py` module here has a `main()`; `python -m bench` runs them all."""
