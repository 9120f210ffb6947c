"""KV cache events from vLLM: decoding its ZMQ frames and receiving them in a replica.

- `decode_kv_frames`: one multipart frame (topic, sequence, msgpack `KVEventBatch`) ->
  `cluster.engine.KVEventBatch` (pure).
- `KVEventSubscriber`: a ZMQ SUB socket bound on loopback that vLLM's publisher connects to.
- `Fanout`: hands every received batch to each `kv_events()` consumer, bounded.
- `KVEventPublisher` / `kv_frames`: send batches as vLLM frames on a ZMQ PUB socket
  (`modelyard sim serve`, model replicas in the Serve app).
- `EventFeed`: subscribe to many publishers (one per replica), decoded batches to a callback
  (the request routers).
"""

from cluster.kv_events.decode import KVEventDecodeError, decode_kv_frames
from cluster.kv_events.fanout import Fanout
from cluster.kv_events.feed import EventFeed
from cluster.kv_events.publisher import KVEventPublisher, kv_frames, kv_payload
from cluster.kv_events.subscriber import KVEventSubscriber

__all__ = [
    "EventFeed",
    "Fanout",
    "KVEventDecodeError",
    "KVEventPublisher",
    "KVEventSubscriber",
    "decode_kv_frames",
    "kv_frames",
    "kv_payload",
]
