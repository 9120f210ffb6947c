"""docs/benchmarks/live.md stays runnable: its cluster file loads with every check `up`
makes, and every command it shows parses with the parser of the command it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bench import thirdparty
from cluster.cli.main import build_parser
from cluster.config import load_builtin_catalog, load_config
from cluster.placement import plan_for

DOCS = Path(__file__).parents[3] / "docs" / "benchmarks"
BLOCKS = re.findall(r"```\n(.*?)```", (DOCS / "live.md").read_text("utf-8"), flags=re.S)


def commands() -> list[list[str]]:
    out = []
    for block in BLOCKS:
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            synopsis = "[" in line or " | " in line  # a usage line, not a command
            if line.startswith(("modelyard ", "python -m bench.")) and not synopsis:
                out.append(shlex.split(line.replace("$T", "trace.jsonl")))
    return out


def test_the_cluster_file_loads_and_places() -> None:
    config = load_config(DOCS / "live-up.yaml")
    (model,) = config.served_models(load_builtin_catalog())
    assert model.id == "qwen/qwen3-coder-flash" and model.deployment.replicas == 4
    assert (model.deployment.sim.kv_blocks, model.deployment.sim.block_size) == (4000, 512)
    assert plan_for(model, config.ray).gpus == 2


def test_the_doc_shows_every_command_kind() -> None:
    heads = {tuple(c[:3]) for c in commands()}
    assert ("modelyard", "bench", "route") in heads and ("modelyard", "up", "--config") in heads
    assert ("python", "-m", "bench.thirdparty") in heads


@pytest.mark.parametrize("argv", commands(), ids=lambda a: " ".join(a[:4]))
def test_doc_command_parses(argv: list[str]) -> None:
    if argv[0] == "modelyard":
        args = build_parser().parse_args(argv[1:])
        assert callable(args.run)
        return
    module = argv[2]
    if module == "bench.thirdparty":
        thirdparty.build_parser().parse_args(argv[3:])
    else:  # these mains would run at once: the module must be one of the documented tools
        assert module in ("bench.live_plot", "bench.live_record")
