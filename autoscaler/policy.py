"""modelyard's autoscaling policy: `decide(settings, context, state) -> Decision`, pure.

One call per control-loop tick:

1. record the sample (now, ongoing requests) and keep one stable window of them
   (`autoscaler.windows`); remember the last time anything was ongoing;
2. account for replicas that became ready: the measured start-up time is the lead time
   (`autoscaler.startup`);
3. replicas the demand asks for: stable window with the rising trend projected over the
   lead time, and the panic window (`autoscaler.policy_demand`);
4. the saturation guard's floor on KV usage and queue (`autoscaler.policy_guard`):
   D = max(demand, guard);
5. bounds, wake-up, one-at-a-time scale-down with headroom, scale to zero
   (`autoscaler.stabilizer`);
6. replicas added are recorded as launches (start-up measurement), and the times of the
   last scale up / down and of entering panic go into the state.

No Ray import: Ray Serve reaches this through `autoscaler.serve_adapter`, and the replay
benchmark (`bench.autoscale`) calls it directly.
"""

from __future__ import annotations

from autoscaler import startup, windows
from autoscaler.context import Decision, PolicyContext, PolicyState
from autoscaler.policy_demand import estimate
from autoscaler.policy_guard import guard_floor
from autoscaler.stabilizer import stabilize
from cluster.config.autoscaling import AutoscalingSettings


def decide(settings: AutoscalingSettings, ctx: PolicyContext, state: PolicyState) -> Decision:
    """Replicas for this model now, and the state for the next call (module docstring)."""
    samples = windows.keep(state.samples, (ctx.now, ctx.ongoing), settings.stable_window_s)
    state = state.but(samples=samples)
    if ctx.ongoing > 0 or state.last_busy is None:  # idle time counts from the first call
        state = state.but(last_busy=ctx.now)
    state = startup.observe(state, ctx)
    lead = startup.lead_s(state, settings.startup_s)
    demand = estimate(settings, samples, ctx.now, ctx.capacity, lead)
    guard = guard_floor(settings, ctx)
    wanted = max(demand.replicas, guard)
    if demand.panic:
        state = state.but(panic_until=ctx.now + settings.stable_window_s)
    peak = windows.peak(samples, ctx.now, settings.stable_window_s)
    step = stabilize(settings, ctx, state, wanted, peak)
    current = ctx.capacity
    if step.replicas > current:
        state = startup.launched(state, ctx.now, step.replicas - current).but(last_up=ctx.now)
    elif step.replicas < current:
        state = state.but(last_down=ctx.now)
    reasons = [step.reason]
    if demand.panic:
        reasons.append("panic")
    if guard > demand.replicas:
        reasons.append("saturation guard")
    return Decision(replicas=step.replicas, state=state, reasons=tuple(reasons))
