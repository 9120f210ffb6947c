"""`ProgressWatchdog` (deployments/watchdog.py): quiet time while requests are in flight."""

from __future__ import annotations

import pytest

from deployments.watchdog import ProgressWatchdog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# (events as (time, action), time of the check, expected check() result); stall_after_s = 5.
CASES: list[tuple[str, list[tuple[float, str]], float, float | None]] = [
    ("idle for long is healthy", [], 100.0, None),
    ("work that just began", [(10.0, "began")], 14.0, None),
    ("work without output past the bound", [(10.0, "began")], 15.5, 5.5),
    ("output moves the mark", [(10.0, "began"), (14.0, "progressed")], 18.0, None),
    ("quiet after the last output", [(10.0, "began"), (14.0, "progressed")], 19.5, 5.5),
    ("a request ending moves the mark", [(0.0, "began"), (0.0, "began"), (4, "ended")], 8.0, None),
    ("all ended: idle again", [(0.0, "began"), (1.0, "ended")], 50.0, None),
    (
        "a cancelled request does not move the mark",
        [(0.0, "began"), (0.0, "began"), (4.0, "cancelled")],
        5.5,
        5.5,
    ),
    (
        "a new request on a stuck engine does not hide the stall",
        [(0.0, "began"), (4.0, "began"), (5.5, "began")],
        6.0,
        6.0,
    ),
    (
        "work beginning after idle restarts the clock",
        [(0.0, "progressed"), (30, "began")],
        34,
        None,
    ),
]


@pytest.mark.parametrize(
    ("events", "at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_check(events: list[tuple[float, str]], at: float, expected: float | None) -> None:
    clock = Clock()
    dog = ProgressWatchdog(5.0, clock=clock)
    for when, action in events:
        clock.now = when
        if action == "cancelled":
            dog.ended(progressed=False)
        else:
            getattr(dog, action)()
    clock.now = at
    assert dog.check() == expected
    assert dog.tripped == (expected is not None)


def test_a_trip_is_sticky() -> None:
    clock = Clock()
    dog = ProgressWatchdog(1.0, clock=clock)
    dog.began()
    clock.now = 2.0
    assert dog.check() == 2.0
    dog.progressed()
    dog.ended()
    clock.now = 3.0
    assert dog.check() == 2.0 and dog.tripped


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProgressWatchdog(0.0)
