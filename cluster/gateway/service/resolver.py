"""Model names as clients send them → the served model (and LoRA adapter) they mean.

Accepted: a public id or alias (`ModelSpec.names`), and `name:adapter` for a model whose
spec has `lora` set; whether that adapter exists is the engine's call. Anything else is
`ModelNotFound` (404) naming only what the client sent — never the list of served models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cluster.config.settings import ServedModel
from cluster.errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: ServedModel
    adapter: str | None = None

    @property
    def public_name(self) -> str:
        """What responses report as `model`: the public id, plus `:adapter` if any."""
        return self.model.id if self.adapter is None else f"{self.model.id}:{self.adapter}"


class ModelResolver:
    def __init__(self, served: Iterable[ServedModel]) -> None:
        self._by_name: dict[str, ServedModel] = {}
        self._models: list[ServedModel] = []
        for model in served:
            self._models.append(model)
            for name in model.spec.names:
                self._by_name[name] = model

    @property
    def models(self) -> list[ServedModel]:
        return list(self._models)

    def resolve(self, name: str) -> ResolvedModel:
        model = self._by_name.get(name)
        if model is not None:
            return ResolvedModel(model)
        base, sep, adapter = name.partition(":")
        model = self._by_name.get(base) if sep else None
        if model is None:
            raise ModelNotFound(
                f"The model '{_shown(name)}' does not exist or you do not have access to it.",
                param="model",
            )
        if model.spec.lora is None:
            raise ModelNotFound(
                f"The model '{_shown(name)}' does not exist: '{base}' serves no LoRA adapters.",
                param="model",
            )
        if not adapter:
            raise ModelNotFound(
                f"The model '{_shown(name)}' does not exist: name an adapter after ':'.",
                param="model",
            )
        return ResolvedModel(model, adapter)


def _shown(name: str, limit: int = 200) -> str:
    """The client's string as echoed in an error, bounded in length."""
    return name if len(name) <= limit else name[:limit] + "…"
