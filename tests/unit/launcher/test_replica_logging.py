"""`log_like_serve`: our loggers take Serve's handlers and the configured level inside a
replica, and are left alone (level only) outside one."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from deployments.replica_logging import log_like_serve

NAMES = ("modelyard-test-cluster", "modelyard-test-deployments")


@pytest.fixture
def clean() -> Iterator[None]:
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in NAMES}
    serve = logging.getLogger("ray.serve")
    serve_handlers = list(serve.handlers)
    yield
    serve.handlers[:] = serve_handlers
    for name, (level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("clean")
def test_our_loggers_write_to_serves_handlers_at_the_level() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("ray.serve").addHandler(handler)
    log_like_serve("DEBUG", NAMES)
    log_like_serve("DEBUG", NAMES)  # idempotent: one handler each
    for name in NAMES:
        logger = logging.getLogger(name)
        assert logger.handlers.count(handler) == 1
        assert not logger.propagate
        logger.debug("line from %s", name)
    assert stream.getvalue().splitlines() == [f"line from {name}" for name in NAMES]


@pytest.mark.usefixtures("clean")
def test_outside_a_replica_only_the_level_changes() -> None:
    logging.getLogger("ray.serve").handlers.clear()
    log_like_serve("WARNING", NAMES)
    for name in NAMES:
        logger = logging.getLogger(name)
        assert logger.level == logging.WARNING
        assert logger.handlers == []
        assert logger.propagate
