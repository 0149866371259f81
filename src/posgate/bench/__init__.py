"""Benchmarks (run as modules, e.g. ``python -m posgate.bench.codec``); never imported by the product."""
