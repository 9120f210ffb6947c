"""The committed stubs in cluster/gateway/grpc/gen are exactly what `make protos` produces now."""

from __future__ import annotations

from pathlib import Path

from cluster.gateway.grpc import codegen


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text("utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(codegen.GEN_DIR)
    assert sorted(fresh) == sorted(committed), "run `make protos`: generated file set differs"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"run `make protos`: out of date: {stale}"


def test_every_proto_is_generated(tmp_path: Path) -> None:
    written = {p.name for p in codegen.generate(tmp_path)}
    for proto in codegen.proto_files():
        assert f"{proto.stem}_pb2.py" in written
        assert f"{proto.stem}_pb2.pyi" in written


def test_imports_point_into_the_package(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    for path in tmp_path.rglob("*.py*"):
        text = path.read_text("utf-8")
        assert "from modelyard.v1 import" not in text, path.name
    assert "from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2" in (
        tmp_path / "modelyard/v1/inference_pb2_grpc.py"
    ).read_text("utf-8")
