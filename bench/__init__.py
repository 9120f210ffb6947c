"""Benchmarks and their harnesses; tooling, never imported by the product.

`modelyard bench route`: trace replay of routing policies against simulated replicas.
Pure of Ray and vLLM: the simulated replicas come from a factory the CLI builds. Modules:
`trace` (Mooncake loader), `policies` (modelyard's router and the baselines), `replay`
(discrete-event replay), `bounds` (hit-rate references), `report` (summaries, table),
`runner` (all policies over one trace), `plot`, `decision_cost`.

`modelyard bench autoscale`: the autoscaling replay (`bench.autoscale`).

Nothing is imported here, so `modelyard --help` does not pay for numpy.
"""
