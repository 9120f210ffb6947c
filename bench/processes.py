"""Start, wait for and stop the local processes of a benchmark run (all on 127.0.0.1).

`ManagedProcess` starts a command in its own session (so stopping it stops its children
too), sends its output to a log file, and `stop()` ends it: SIGINT (the servers here stop
cleanly on it), then SIGTERM, then SIGKILL, each after a bounded wait. Nothing it started
outlives `stop()`; use it as a context manager so that holds on errors too.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess  # nosec B404
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

STOP_WAIT_S = 10.0


#: Where `free_port` looks: above Ray's worker ports (10002-19999) and below Linux's
#: ephemeral range (32768-60999), from which every `bind(port 0)` — Ray's own servers, other
#: tests — and every outgoing connection takes its port. A port handed out from the
#: ephemeral range could be taken by one of those between this check and the server's bind.
FREE_PORT_RANGE = (20000, 32767)


def free_port(rng: random.Random | None = None) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (see `FREE_PORT_RANGE`)."""
    pick = rng or random.SystemRandom()
    low, high = FREE_PORT_RANGE
    for _ in range(200):
        port = pick.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {low}-{high}")


class ManagedProcess:
    def __init__(self, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None):
        self.argv = list(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(  # nosec B603
            self.argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the session this process leads: it and its children

    def stop(self) -> int | None:
        """End the process and its children; return its exit code (None if it had to be
        killed)."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self._signal_group(sig)
            try:
                self.proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                continue
        code = self.proc.poll()
        self._signal_group(signal.SIGKILL)  # children that ignored the signals
        self._log_file.close()
        return code

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_http_ok(url: str, *, timeout_s: float, process: ManagedProcess | None = None) -> None:
    """Poll `url` until it answers 200; raise TimeoutError (with the log's tail) if not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and not process.running():
            raise RuntimeError(f"{process.argv[0]} exited early:\n{process.tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = f"\n{process.tail()}" if process is not None else ""
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s{tail}")
