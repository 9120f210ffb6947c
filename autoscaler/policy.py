"""modelyard's autoscaling policy: `decide(settings, context, state) -> Decision`, pure.

One call per control-loop tick:

1. record the sample (now, load in replicas: `autoscaler.policy_demand.load`) and keep
   one stable window of them, and the stable window's mean over the hold window
   (`autoscaler.windows`); remember the last time anything was ongoing;
2. account for replicas that became ready: the measured start-up time is the lead time
   (`autoscaler.startup`);
3. replicas the demand asks for: stable window with the rising trend projected over the
   lead time (once half a hold window has been observed), and the panic window
   (`autoscaler.policy_demand`);
4. the saturation guard's floor on sustained KV usage, queue or late first tokens
   (`autoscaler.policy_guard`): D = max(demand, guard); a replica the guard adds also
   corrects the load model (`autoscaler.calibration`), which scales every load in 3 and 5,
   and when the guard adds one, D is at least the fleet the corrected stable load needs
   at the scale-down headroom (`calibration.corrected_fleet`);
5. bounds, wake-up, one-at-a-time scale-down with headroom over the peak stable-window
   load of the hold window (`hold_window_s`; no scale-down before one whole hold window
   has been observed), scale to zero (`autoscaler.stabilizer`);
6. replicas added are recorded as launches (start-up measurement), and the times of the
   last scale up / down and of entering panic go into the state.

No Ray import: Ray Serve reaches this through `autoscaler.serve_adapter`, and the replay
benchmark (`bench.autoscale`) calls it directly.
"""

from __future__ import annotations

from autoscaler import calibration, startup, windows
from autoscaler.context import Decision, PolicyContext, PolicyState
from autoscaler.policy_demand import estimate, load
from autoscaler.policy_guard import guard_floor, saturated_since
from autoscaler.stabilizer import stabilize
from cluster.config.autoscaling import AutoscalingSettings


def hold_window_s(settings: AutoscalingSettings, lead_s: float) -> float:
    """Scale-down looks back H = max(stable_window_s, 2 * lead) seconds: a replica given
    back now takes a lead time to return, so it goes only if the (stable-window) load of
    the last two lead times would not have needed it. The trend is measured over H too."""
    return max(settings.stable_window_s, 2.0 * lead_s)


def decide(settings: AutoscalingSettings, ctx: PolicyContext, state: PolicyState) -> Decision:
    """Replicas for this model now, and the state for the next call (module docstring)."""
    first_seen = ctx.now if state.first_seen is None else state.first_seen
    state = state.but(first_seen=first_seen)
    if ctx.ongoing > 0 or state.last_busy is None:  # idle time counts from the first call
        state = state.but(last_busy=ctx.now)
    state = startup.observe(state, ctx)
    lead = startup.lead_s(state, settings.startup_s)
    horizon = hold_window_s(settings, lead)
    samples = windows.keep(state.samples, (ctx.now, load(settings, ctx)), settings.stable_window_s)
    stable = windows.mean(samples, ctx.now, settings.stable_window_s)
    means = windows.keep(state.means, (ctx.now, stable), horizon)
    state = state.but(samples=samples, means=means)
    observed = ctx.now - first_seen
    trend_means = means if observed >= horizon / 2 else ()
    k = calibration.current(settings, state, ctx.now)
    demand = estimate(settings, samples, trend_means, ctx.now, ctx.capacity, lead, k)
    since = saturated_since(settings, ctx, state.saturated_since)
    state = state.but(saturated_since=since)
    guard = guard_floor(settings, ctx, since)
    wanted = max(demand.replicas, guard)
    if demand.panic:
        state = state.but(panic_until=ctx.now + settings.stable_window_s)
    # Until a whole hold window has been observed, nothing says the load will not return.
    peak = windows.peak(means, ctx.now, horizon) * k if observed >= horizon else float("inf")
    current = ctx.capacity
    if guard > max(demand.replicas, current):  # evidence: size the corrected load at once
        corrected = calibration.learn(settings, state, ctx.now, current, stable)
        wanted = max(wanted, calibration.corrected_fleet(settings, corrected, ctx.now, stable))
    step = stabilize(settings, ctx, state, wanted, peak)
    if step.replicas > current and guard > demand.replicas:
        state = calibration.learn(settings, state, ctx.now, current, stable)
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
