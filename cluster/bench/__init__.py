"""`modelyard bench route`: trace replay of placement policies against simulated replicas.

Pure of Ray and vLLM: the simulated replicas come from a factory the CLI builds.
"""

from cluster.bench.report import BenchResult, BenchSettings, PolicyResult
from cluster.bench.trace import TraceRequest, load_trace

__all__ = ["BenchResult", "BenchSettings", "PolicyResult", "TraceRequest", "load_trace"]
