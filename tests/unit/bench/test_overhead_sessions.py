"""The overhead benchmark's Serve sessions: which paths `--ingress` and `--variant` measure."""

from __future__ import annotations

import argparse

import pytest

from bench.overhead_bench import ENDPOINTS, Session, parse_variant, sessions_for


@pytest.mark.parametrize(
    ("text", "label", "env"),
    [
        (
            "sep:RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=1",
            "sep",
            {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1"},
        ),
        (
            "actor:RAY_SERVE_USE_GRPC_BY_DEFAULT=0,RAY_SERVE_PROXY_USE_GRPC=0",
            "actor",
            {
                "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
                "RAY_SERVE_PROXY_USE_GRPC": "0",
            },
        ),
        ("log:RAY_SERVE_LOG_ENCODING=JSON=x", "log", {"RAY_SERVE_LOG_ENCODING": "JSON=x"}),
    ],
)
def test_parse_variant(text: str, label: str, env: dict[str, str]) -> None:
    assert parse_variant(text) == (label, env)


@pytest.mark.parametrize(
    "text",
    [
        "RAY_SERVE_X=1",
        ":RAY_SERVE_X=1",
        "label:",
        "label:RAY_SERVE_X",
        "label:PATH=/tmp",
        "direct:RAY_SERVE_X=1",  # a session of that name exists
        "a/b:RAY_SERVE_X=1",  # names a file
    ],
)
def test_parse_variant_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_variant(text)


PROXY_FLOOR = ["floor-proxy"]
DIRECT_FLOOR = ["floor-direct", "floor-direct-hop", "floor-direct-stream"]


@pytest.mark.parametrize(
    ("ingress", "floor", "paths"),
    [
        ("both", False, ["serve", "serve-p2c", "serve-direct", "serve-direct-p2c"]),
        ("proxy", False, ["serve", "serve-p2c"]),
        ("direct", False, ["serve-direct", "serve-direct-p2c"]),
        ("proxy", True, ["serve", "serve-p2c", *PROXY_FLOOR]),
        (
            "both",
            True,
            ["serve", "serve-p2c", *PROXY_FLOOR, "serve-direct", "serve-direct-p2c", *DIRECT_FLOOR],
        ),
    ],
)
def test_sessions_for_ingress(ingress: str, floor: bool, paths: list[str]) -> None:
    sessions = sessions_for(ingress, [], floor=floor)
    assert [p for s in sessions for p in s.paths.values()] == paths
    assert all(s.env == {} for s in sessions)
    assert all(endpoint in ENDPOINTS for s in sessions for endpoint in s.paths)


def test_a_variant_is_one_more_direct_session_on_our_router() -> None:
    env = {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"}
    sessions = sessions_for("direct", [("loop", env)])
    assert sessions[-1] == Session("loop", "direct", {"placement": "serve-direct+loop"}, env)
    names = [s.name for s in sessions]
    assert len(names) == len(set(names))  # each session has its own ready file and log


def test_variant_labels_must_differ() -> None:
    env = {"RAY_SERVE_X": "1"}
    with pytest.raises(ValueError, match="session names must differ"):
        sessions_for("both", [("a", env), ("a", env)])
