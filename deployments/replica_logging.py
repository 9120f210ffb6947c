"""Our own loggers in a Serve replica, written where Serve's are.

Ray Serve attaches its handlers (the replica's log file under the session's
`logs/serve/`, and stderr unless `RAY_SERVE_LOG_TO_STDERR=0`) to the `ray.serve` logger
only and stops it propagating; a record of `cluster.*` or `deployments.*` reaches the root
logger of the worker, which has no handler, so below WARNING it was lost. `log_like_serve`
gives those loggers Serve's handlers (with their filters and format) and `level`
(`telemetry.log_level`), so a DEBUG run shows the gateway's own lines in the replica log.
"""

from __future__ import annotations

import logging

SERVE_LOGGER = "ray.serve"
OUR_LOGGERS = ("cluster", "deployments")


def log_like_serve(level: str, names: tuple[str, ...] = OUR_LOGGERS) -> None:
    handlers = logging.getLogger(SERVE_LOGGER).handlers
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not handlers:  # not in a Serve replica: leave the process's logging alone
            continue
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.propagate = False
