"""Unit tables for modelyard's autoscaling policy: windows, guard, cascade, bounds,
scale-down, scale to zero and wake-up, lead time."""

from __future__ import annotations

import itertools

import pytest

from autoscaler import calibration, startup, windows
from autoscaler.context import PolicyContext, PolicyState
from autoscaler.policy import decide
from autoscaler.policy_demand import estimate, load
from autoscaler.policy_guard import guard_floor, saturated_since
from autoscaler.stabilizer import stabilize
from cluster.config.autoscaling import AutoscalingSettings

S = AutoscalingSettings(
    min_replicas=1,
    max_replicas=10,
    target_ongoing_per_replica=10,
    stable_window_s=60,
    panic_window_s=6,
    startup_s=100,
)


def flat(level: float, until: float = 100.0, step: float = 1.0) -> tuple[tuple[float, float], ...]:
    n = int(until / step)
    return tuple((i * step, level) for i in range(n + 1))


def ramp(rate: float, until: float = 100.0) -> tuple[tuple[float, float], ...]:
    return tuple((float(t), rate * t) for t in range(int(until) + 1))


BURST = flat(0, until=93) + tuple((float(t), 8.0) for t in range(95, 101))


# ---- load in replicas: queue term and prefill term --------------------------------------


@pytest.mark.parametrize(
    ("prompt_target", "ongoing", "prompt_rate", "load_"),
    [
        (None, 25, 1e9, 2.5),  # no prefill target: the queue alone (25 / 10)
        (1000.0, 25, 500.0, 2.5),  # queue-bound
        (1000.0, 5, 4000.0, 4.0),  # prefill-bound: few ongoing, long prompts
        (1000.0, 0, 0.0, 0.0),
    ],
)
def test_load(prompt_target, ongoing, prompt_rate, load_) -> None:
    settings = S.model_copy(update={"target_prompt_tokens_per_s": prompt_target})
    ctx = PolicyContext(
        now=0, ready=1, starting=0, ongoing=ongoing, prompt_tokens_per_s=prompt_rate
    )
    assert load(settings, ctx) == pytest.approx(load_)


# ---- windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "width", "mean", "peak", "slope"),
    [
        (flat(20), 60, 20.0, 20.0, 0.0),
        (ramp(1.0), 60, 70.5, 100.0, 1.0),  # t in 41..100 -> mean 70.5
        (((0.0, 5.0),), 60, 5.0, 5.0, 0.0),  # one sample: no slope
        (((0.0, 50.0), (95.0, 10.0), (100.0, 20.0)), 10, 15.0, 20.0, 2.0),  # old one out
    ],
)
def test_windows(samples, width, mean, peak, slope) -> None:
    assert windows.mean(samples, 100.0, width) == pytest.approx(mean)
    assert windows.peak(samples, 100.0, width) == pytest.approx(peak)
    assert windows.slope(samples, 100.0, width) == pytest.approx(slope)


def test_keep_drops_samples_older_than_the_horizon() -> None:
    kept = windows.keep(flat(1.0, until=100), (101.0, 2.0), horizon_s=10)
    assert [t for t, _ in kept] == [92.0, 93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0, 100.0, 101.0]


# ---- demand: stable window, lead, panic window ------------------------------------------


@pytest.mark.parametrize(
    ("samples", "means", "capacity", "lead", "stable", "panic", "replicas"),
    [
        # flat load of 2 replicas: 2, no trend, no panic
        (flat(2.0), flat(2.0), 2, 100, 2, False, 2),
        # flat 2.5: ceil -> 3
        (flat(2.5), (), 2, 100, 3, False, 3),
        # ramp 0.02 replicas/s: S = 1.41, Pn = 1.95, F = 1.41 + 0.02 * (30 + 100) = 4.01,
        # capped at 2 x S = 2.82 -> 3 replicas ahead of the load (S alone says 2)
        (ramp(0.02), ramp(0.02), 1, 100, 3, False, 3),
        # same ramp, no lead time: F = 1.41 + 0.02 * 30 = 2.01 -> 3
        (ramp(0.02), ramp(0.02), 1, 0, 3, False, 3),
        # same ramp, no trend history yet (means empty): S = 1.41 -> 2
        (ramp(0.02), (), 1, 100, 2, False, 2),
        # steep ramp: S = 7.05, forecast capped at 2 x S = 14.1 -> 15; Pn = 9.75 -> 10
        (ramp(0.1), ramp(0.1), 10, 1000, 15, False, 15),
        # a burst in the last 6 s: Pn = 8 >= 2 x 1 -> panic; sized to the burst: 8
        (BURST, (), 1, 0, 1, True, 8),
        # the same burst with 4 replicas of capacity: 8 >= 2 x 4 -> panic
        (BURST, (), 4, 0, 1, True, 8),
        # with 5 replicas: 8 < 10 -> no panic (no scale-down hold), still sized to the burst
        (BURST, (), 5, 0, 1, False, 8),
        # a dip in the last 6 s changes nothing
        (
            flat(3.0, until=93) + tuple((float(t), 2.0) for t in range(95, 101)),
            (),
            3,
            0,
            3,
            False,
            3,
        ),
    ],
)
def test_demand_windows(samples, means, capacity, lead, stable, panic, replicas) -> None:
    got = estimate(S, samples, means, 100.0, capacity, lead)
    assert got.stable_replicas == stable
    assert got.panic is panic
    assert got.replicas == replicas


def test_falling_trend_is_not_projected() -> None:
    falling = tuple((float(t), 10.0 - 0.1 * t) for t in range(101))
    got = estimate(S, falling, falling, 100.0, 10, 1000)
    assert got.forecast == pytest.approx(got.stable_mean)


# ---- saturation guard and the cascade rule ----------------------------------------------


@pytest.mark.parametrize(
    ("ready", "starting", "waiting", "kv", "since", "floor"),
    [
        (2, 0, 0, 0.5, None, 0),  # not saturated
        (2, 0, 0, 0.8, 90.0, 3),  # KV at the guard for 10 s: one more
        (2, 0, 10, 0.1, 90.0, 3),  # 5 waiting per ready replica for 10 s: one more
        (2, 0, 10, 0.1, 97.0, 0),  # saturated for only 3 s (< panic window 6 s): a blip
        (2, 0, 9, 0.1, None, 0),  # 4.5 per replica: fine
        (2, 1, 10, 0.9, 90.0, 3),  # saturated but one starting: hold at capacity (no cascade)
        (0, 2, 50, 0.0, None, 0),  # nothing ready: the guard has no reading
    ],
)
def test_guard(ready, starting, waiting, kv, since, floor) -> None:
    ctx = PolicyContext(
        now=100.0, ready=ready, starting=starting, ongoing=0, waiting=waiting, kv_usage=kv
    )
    run_since = saturated_since(S, ctx, since)
    assert (run_since is None) == (since is None)
    assert guard_floor(S, ctx, run_since) == floor


def test_guard_run_starts_at_the_first_saturated_call() -> None:
    hot = PolicyContext(now=50.0, ready=1, starting=0, ongoing=0, waiting=9)
    assert saturated_since(S, hot, None) == 50.0
    assert saturated_since(S, hot, 40.0) == 40.0
    cool = PolicyContext(now=50.0, ready=1, starting=0, ongoing=0, waiting=0)
    assert saturated_since(S, cool, 40.0) is None


# ---- stabilizer: bounds, scale up, one-at-a-time scale down, zero, wake-up ---------------

Z = S.model_copy(update={"min_replicas": 0, "scale_to_zero_idle_s": 300})
BUSY = PolicyState(last_busy=1000.0)


@pytest.mark.parametrize(
    ("settings", "ready", "starting", "ongoing", "state", "wanted", "peak", "out", "reason"),
    [
        (S, 2, 0, 30, PolicyState(), 4, 3, 4, "scale up"),
        (S, 2, 0, 30, PolicyState(), 40, 3, 10, "scale up"),  # max_replicas
        (S, 10, 0, 30, PolicyState(), 11, 3, 10, "steady"),  # at max
        (S, 12, 0, 30, PolicyState(), 1, 0, 10, "above max_replicas"),
        (S, 2, 2, 30, PolicyState(), 4, 3, 4, "steady"),  # cascade: starting counts
        (S, 2, 1, 30, PolicyState(), 4, 3, 4, "scale up"),  # only the missing one
        # scale down: one at a time, with headroom, after the delays
        (S, 4, 0, 5, PolicyState(), 1, 0.5, 3, "scale down"),
        (
            S,
            4,
            0,
            5,
            PolicyState(last_up=900.0),
            1,
            0.5,
            4,
            "hold: scale-down delay after scale-up",
        ),
        (S, 4, 0, 5, PolicyState(last_down=990.0), 1, 0.5, 4, "hold: scale-down interval"),
        (S, 4, 0, 5, PolicyState(panic_until=1010.0), 1, 0.5, 4, "hold: panic"),
        # peak 2.5 > 0.8 x 3 = 2.4: three replicas would have no headroom
        (S, 4, 0, 5, PolicyState(), 1, 2.5, 4, "hold: no headroom for one fewer"),
        (S, 4, 0, 5, PolicyState(), 1, 2.4, 3, "scale down"),
        (S, 1, 0, 0, PolicyState(), 0, 0, 1, "steady"),  # min_replicas 1
        (S, 0, 0, 0, PolicyState(), 0, 0, 1, "idle at zero"),  # below min -> min
        # scale to zero after the idle time, and wake-up
        (Z, 1, 0, 0, PolicyState(last_busy=600.0), 0, 0, 0, "scale to zero"),
        (Z, 1, 0, 0, PolicyState(last_busy=800.0), 0, 0, 1, "steady"),  # idle 200 s < 300
        (Z, 1, 0, 0, PolicyState(), 0, 0, 0, "scale to zero"),  # never busy
        (Z, 0, 0, 0, BUSY, 0, 0, 0, "idle at zero"),
        (Z, 0, 0, 1, BUSY, 1, 0.1, 1, "wake-up"),
        (Z, 0, 0, 35, BUSY, 4, 3.5, 4, "wake-up"),
        (Z, 0, 1, 35, BUSY, 4, 3.5, 4, "scale up"),  # one already starting: 3 more
    ],
)
def test_stabilizer(settings, ready, starting, ongoing, state, wanted, peak, out, reason) -> None:
    ctx = PolicyContext(now=1000.0, ready=ready, starting=starting, ongoing=ongoing)
    step = stabilize(settings, ctx, state, wanted, peak)
    assert (step.replicas, step.reason) == (out, reason)


# ---- lead time from the measured start-up ----------------------------------------------


def test_startup_is_measured_from_launch_to_ready() -> None:
    state = startup.launched(PolicyState(last_ready=1), now=0.0, count=2)
    state = startup.observe(state, PolicyContext(now=50, ready=1, starting=2, ongoing=0))
    assert state.startup_s is None
    state = startup.observe(state, PolicyContext(now=120, ready=2, starting=1, ongoing=0))
    assert state.startup_s == pytest.approx(120)
    state = startup.observe(state, PolicyContext(now=220, ready=3, starting=0, ongoing=0))
    assert state.startup_s == pytest.approx(0.7 * 120 + 0.3 * 220)
    assert startup.lead_s(state, 999) == pytest.approx(150)
    assert startup.lead_s(PolicyState(), 999) == 999


def test_cancelled_launches_are_forgotten() -> None:
    state = startup.launched(PolicyState(last_ready=1), now=0.0, count=3)
    state = startup.observe(state, PolicyContext(now=10, ready=1, starting=1, ongoing=0))
    assert state.launches == (0.0,)


# ---- the whole policy over time ---------------------------------------------------------


def run(settings, demand, *, seconds, ready=1, startup_s=30.0):
    """Drive `decide` once a second; replicas become ready `startup_s` after launch."""
    state, pending, history = PolicyState(), [], []
    for now in range(seconds):
        ready += sum(1 for t in pending if t + startup_s <= now)
        pending = [t for t in pending if t + startup_s > now]
        ctx = PolicyContext(now=float(now), ready=ready, starting=len(pending), ongoing=demand(now))
        decision = decide(settings, ctx, state)
        state = decision.state
        delta = decision.replicas - ctx.capacity
        if delta > 0:
            pending += [float(now)] * delta
        elif delta < 0:
            cancel = min(-delta, len(pending))
            pending = pending[: len(pending) - cancel]
            ready -= -delta - cancel
        history.append(ready + len(pending))
    return history, state


def test_a_burst_scales_up_without_cascade_and_back_down_one_at_a_time() -> None:
    # No forecast (max_lead_factor 1): the step is 60 ongoing, 6 replicas exactly.
    settings = S.model_copy(
        update={"scale_down_delay_s": 60, "scale_down_interval_s": 20, "max_lead_factor": 1.0}
    )
    history, state = run(settings, lambda t: 60.0 if 10 <= t < 100 else 0.0, seconds=600)
    assert max(history) == 6  # 60 ongoing / 10 per replica: never more (no cascade)
    assert history[-1] == 1
    downs = [b - a for a, b in itertools.pairwise(history) if b < a]
    assert downs and all(d == -1 for d in downs)
    assert state.startup_s == pytest.approx(30.0)


def test_a_ramp_is_led_by_the_start_up_time() -> None:
    """A steady ramp: replicas are asked for before the queue target is crossed."""
    settings = S.model_copy(update={"panic_threshold": 10.0})
    history, _ = run(settings, lambda t: 0.1 * t, seconds=300, startup_s=60)
    # demand reaches 10 x k ongoing at t = 100 k; the k-th extra replica is there before
    for k in (1, 2):
        assert history[100 * k] >= k + 1


def test_scale_to_zero_then_a_request_wakes_it() -> None:
    settings = Z.model_copy(update={"scale_to_zero_idle_s": 100})
    history, _ = run(settings, lambda t: 1.0 if t >= 300 else 0.0, seconds=400)
    assert history[50] == 1 and history[150] == 0 and history[299] == 0
    assert history[300] == 1  # woken by the first request at once


def test_state_round_trips_through_a_dict() -> None:
    state = PolicyState(
        samples=((1.0, 2.0),), last_up=3.0, panic_until=9.0, launches=(4.0,), startup_s=5.0
    )
    assert PolicyState.from_dict(state.to_dict()) == state
    assert PolicyState.from_dict({}) == PolicyState()


# ---- calibration: the guard's evidence corrects the load model ---------------------------


@pytest.mark.parametrize(
    ("before", "capacity", "stable", "after"),
    [
        (1.0, 4, 2.5, 2.0),  # 4 saturated at load 2.5: 5 / 2.5 = 2
        (2.5, 4, 2.5, 2.5),  # weaker evidence never lowers it
        (1.0, 9, 1.0, 4.0),  # capped at max_calibration
        (1.0, 2, 0.0, 4.0),  # saturated with no load measured: the cap
    ],
)
def test_calibration_learns_from_the_guard(before, capacity, stable, after) -> None:
    state = PolicyState(calibration=before, calibrated_at=100.0)
    learned = calibration.learn(S, state, 100.0, capacity, stable)
    assert learned.calibration == pytest.approx(after)
    assert calibration.current(S, learned, 100.0) == pytest.approx(after)


def test_calibration_fades_with_its_half_life() -> None:
    state = PolicyState(calibration=3.0, calibrated_at=0.0)
    assert calibration.current(S, state, S.calibration_half_life_s) == pytest.approx(2.0)
    assert calibration.current(S, state, 2 * S.calibration_half_life_s) == pytest.approx(1.5)
    assert calibration.current(S, PolicyState(), 50.0) == 1.0


@pytest.mark.parametrize(
    ("k", "stable", "fleet"),
    [
        (1.0, 4.0, 5),  # ceil(4 / 0.8)
        (2.0, 4.0, 10),  # ceil(8 / 0.8)
        (1.5, 3.0, 6),  # ceil(5.625)
        (1.25, 4.0, 7),  # ceil(6.25)
        (3.0, 0.0, 0),  # no load, no replicas
    ],
)
def test_corrected_fleet_carries_the_corrected_load_at_the_headroom(k, stable, fleet) -> None:
    state = PolicyState(calibration=k, calibrated_at=100.0)
    assert calibration.corrected_fleet(S, state, 100.0, stable) == fleet


def test_the_guard_evidence_sizes_the_corrected_load_in_one_step() -> None:
    """4 ready replicas at a stable load of 4 (40 ongoing / 10) keep first tokens late:
    the guard's evidence k = 5 / 4 asks at once for ceil(1.25 * 4 / 0.8) = 7, not 5."""
    settings = S.model_copy(update={"ttft_guard_s": 1.0})
    state = PolicyState()
    for now in range(30):
        ctx = PolicyContext(now=float(now), ready=4, starting=0, ongoing=40.0, recent_ttft_s=1.5)
        decision = decide(settings, ctx, state)
        state = decision.state
        if decision.replicas != 4:
            break
    assert now == settings.panic_window_s  # sustained for one panic window
    assert decision.replicas == 7
    assert "saturation guard" in decision.reasons
    assert state.calibration == pytest.approx(1.25)
