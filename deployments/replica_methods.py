"""The names of `ModelReplica`'s generation methods, written once.

Serve calls a replica's method by name: the gateway's handle backend calls
`GENERATE_BATCHES` through each model's handle, and the request router routes only the
calls in `GENERATE_METHODS` by prefix (everything else, such as stats, goes anywhere).
`tests/unit/model_replica` checks that `ModelReplica` has methods of these names.
"""

from __future__ import annotations

#: One engine chunk per stream item.
GENERATE = "generate"
#: A list of the chunks that were ready together per stream item (what the gateway uses).
GENERATE_BATCHES = "generate_batches"
#: The calls that run a generation, routed by the request's prefix.
GENERATE_METHODS = frozenset({GENERATE, GENERATE_BATCHES})
