"""Benchmarks and their harnesses. Tooling: never imported by the product."""
