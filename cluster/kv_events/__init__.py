"""KV cache events from vLLM: decoding its ZMQ frames and receiving them in a replica.

- `decode_kv_frames`: one multipart frame (topic, sequence, msgpack `KVEventBatch`) ->
  `cluster.engine.KVEventBatch` (pure).
- `KVEventSubscriber`: a ZMQ SUB socket bound on loopback that vLLM's publisher connects to.
- `Fanout`: hands every received batch to each `kv_events()` consumer, bounded.
"""

from cluster.kv_events.decode import KVEventDecodeError, decode_kv_frames
from cluster.kv_events.fanout import Fanout
from cluster.kv_events.subscriber import KVEventSubscriber

__all__ = ["Fanout", "KVEventDecodeError", "KVEventSubscriber", "decode_kv_frames"]
