"""The model cache: one folder per prepared model, complete or absent.

Layout: `<root>/<name>/` with `name` = the model id, '/' replaced by '--'. A folder counts
as prepared only if it holds `modelyard-model.json` (written last), so an interrupted
preparation never looks finished. Builds happen in `<root>/.staging-<name>-<pid>/` and are
moved into place with one `rename` (atomic on one filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_VAR = "MODELYARD_MODEL_CACHE"
DEFAULT_ROOT = Path("~/.cache/modelyard/models")
MARKER = "modelyard-model.json"


class PreparedModel(BaseModel):
    """What the marker file records about a prepared model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    path: str
    source: str = Field(description="where the weights came from")
    prepared_at: float
    build_seconds: float = Field(ge=0)
    files: dict[str, int] = Field(default_factory=dict, description="file name -> bytes")


class ModelCache:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelCache:
        """`$MODELYARD_MODEL_CACHE` if set (and not empty), else `~/.cache/modelyard/models`."""
        env = os.environ if environ is None else environ
        value = env.get(ENV_VAR, "").strip()
        return cls(Path(value) if value else DEFAULT_ROOT)

    @staticmethod
    def folder_name(model_id: str) -> str:
        if not model_id or model_id.startswith(".") or "\\" in model_id:
            raise ValueError(f"not a cacheable model id: {model_id!r}")
        return model_id.replace("/", "--")

    def path_for(self, model_id: str) -> Path:
        return self.root / self.folder_name(model_id)

    def lookup(self, model_id: str) -> PreparedModel | None:
        """The prepared model, or None if absent, unfinished or its marker is unreadable."""
        marker = self.path_for(model_id) / MARKER
        try:
            return PreparedModel.model_validate_json(marker.read_text("utf-8"))
        except (OSError, ValidationError):
            return None

    def staging_dir(self, model_id: str) -> Path:
        path = self.root / f".staging-{self.folder_name(model_id)}-{os.getpid()}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def commit(
        self, model_id: str, staging: Path, *, source: str, build_seconds: float
    ) -> PreparedModel:
        """Write the marker into `staging` and move it to its final place (replacing any)."""
        files = {p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()}
        final = self.path_for(model_id)
        info = PreparedModel(
            model_id=model_id,
            path=str(final),
            source=source,
            prepared_at=time.time(),
            build_seconds=round(build_seconds, 3),
            files=files,
        )
        (staging / MARKER).write_text(json.dumps(info.model_dump(), indent=2) + "\n", "utf-8")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return info
