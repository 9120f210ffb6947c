"""The soak's load generator: Locust (as a library, headless) at a fixed request rate.

Run in its own process (`python -m bench.soak.load ...`, started by `bench.soak.run`):
importing Locust monkey-patches the standard library for gevent, which must not happen in
the process that is Ray's driver.

    python -m bench.soak.load --host URL --rate R --users U --duration-s D
        --models M1,M2 --records FILE [--max-tokens N]

`U` pacing users, each with Locust's `constant_throughput(R / U)`, spawned at `R` users
per second so their starts are spread over one pacing interval: together they start `R`
requests per second as long as a request takes less than `U / R` seconds. Each user cycles
through the request mix (`bench.soak.answers.MIX`: chat and completions, streamed and not,
over the given models) and appends one JSON line per request to FILE:

    {"t": start (epoch s), "kind": "chat-stream", "model": ..., "ok": true,
     "status": 200, "ttft_s": 0.041, "total_s": 0.29, "error": null}

`ttft_s` is the time to the first streamed event with a token (`answers.has_text`; the whole
answer for non-streamed requests). A streamed request is `ok` only if it ended with `[DONE]` after a
usage chunk; a non-streamed one only with 200 and a body with `choices` and `usage`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import gevent
from locust import HttpUser, constant_throughput, task
from locust.env import Environment

from bench.soak.answers import MIX, REQUEST_TIMEOUT_S, check_body, read_stream, request_body


class SoakUser(HttpUser):
    """One pacing user; `configure` sets the class up before the run."""

    abstract = True
    models: Sequence[str] = ()
    max_tokens = 32
    records: IO[str] | None = None

    def on_start(self) -> None:
        self._turns = itertools.count()

    @task
    def one_request(self) -> None:
        n = next(self._turns)
        kind, path, streamed = MIX[n % len(MIX)]
        model = self.models[(n // len(MIX)) % len(self.models)]
        body = request_body(kind, model, streamed, n, self.max_tokens)
        record: dict[str, Any] = {"t": time.time(), "kind": kind, "model": model}
        started = time.perf_counter()
        ttft: float | None = None
        status = 0
        error: str | None = None
        try:
            with self.client.post(
                path,
                json=body,
                stream=streamed,
                catch_response=True,
                name=kind,
                timeout=REQUEST_TIMEOUT_S,
            ) as response:
                status = response.status_code
                if status != 200:
                    error = f"HTTP {status}"
                elif streamed:
                    ttft, error = read_stream(response.iter_lines(), started)
                else:
                    ttft = time.perf_counter() - started
                    error = check_body(response.json())
                if error is None:
                    response.success()
                else:
                    response.failure(error)
        except Exception as err:  # any client-side failure is an error row
            error = f"{type(err).__name__}: {err}"
        record |= {
            "ok": error is None,
            "status": status,
            "ttft_s": ttft,
            "total_s": time.perf_counter() - started,
            "error": error,
        }
        if self.records is not None:
            self.records.write(json.dumps(record) + "\n")
            self.records.flush()


def run_load(args: argparse.Namespace) -> None:
    per_user = args.rate / args.users
    user: type[SoakUser] = type(
        "PacedSoakUser",
        (SoakUser,),
        {
            "abstract": False,
            "wait_time": constant_throughput(per_user),
            "models": tuple(args.models.split(",")),
            "max_tokens": args.max_tokens,
        },
    )
    with Path(args.records).open("a", encoding="utf-8") as records:
        user.records = records
        # A stopping user finishes the request it is in, so every request started is recorded.
        env = Environment(user_classes=[user], host=args.host, stop_timeout=REQUEST_TIMEOUT_S + 5)
        runner = env.create_local_runner()
        # Users start evenly over one pacing interval, so requests do not come in bursts.
        runner.start(args.users, spawn_rate=args.rate)
        gevent.spawn_later(args.duration_s, runner.quit)
        runner.greenlet.join()
        total = env.stats.total
        print(
            f"locust: {total.num_requests} requests, {total.num_failures} failures, "
            f"{total.total_rps:.2f} req/s",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak.load")
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--models", required=True, help="comma-separated model ids")
    parser.add_argument("--records", required=True, help="JSON lines, one per request")
    parser.add_argument("--max-tokens", type=int, default=32)
    run_load(parser.parse_args(argv))


if __name__ == "__main__":
    main()
