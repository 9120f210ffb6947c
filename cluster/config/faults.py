"""Fault injection on a model's KV event stream: a test setting, off by default.

`models[i].kv_event_faults` (null: no faults) makes every replica of that model damage the
KV event batches it republishes for the request routers (`cluster.kv_events.faults`), so
a test can show that the routers' prefix index resynchronises. The engine, its cache and
the replica's own snapshot of the cache are untouched; only what goes on the wire is.

While active — from `start_s` after the replica publishes its first batch, for
`duration_s` — each batch independently is, with these probabilities (checked in this
order, one fault per batch at most):

    drop       never sent                             (the router sees a gap in `seq`)
    duplicate  sent twice                             (the router must ignore the copy)
    delay      held back and sent after the next      (out of order; a delay longer than
               `delay_batches` batches                 the router's reorder window is a gap)

Outside the window every batch passes unchanged; batches still held when it closes are
sent then. Decisions come from a random generator seeded with `seed`, so a replica
injects the same faults for the same stream.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class KVEventFaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float = Field(
        default=0.0, ge=0, description="faults begin this long after the replica's first batch"
    )
    duration_s: float = Field(default=60.0, gt=0, description="how long faults are injected")
    drop: float = Field(default=0.0, ge=0, le=1, description="probability a batch is dropped")
    duplicate: float = Field(
        default=0.0, ge=0, le=1, description="probability a batch is sent twice"
    )
    delay: float = Field(
        default=0.0, ge=0, le=1, description="probability a batch is sent late (reordered)"
    )
    delay_batches: int = Field(
        default=3, ge=1, description="a delayed batch is sent after this many later batches"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _probabilities(self) -> KVEventFaults:
        if self.drop + self.duplicate + self.delay > 1.0:
            raise ValueError("drop + duplicate + delay must not exceed 1")
        return self
