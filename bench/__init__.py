"""Benchmarks and their harnesses; tooling, never imported by the product."""
