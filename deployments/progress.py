"""Follow a Serve application while it starts: which deployments are ready, and when.

Pure: `ReadinessTracker.observe` takes a snapshot of `serve.status()` (converted by
`snapshot_from_status`) and the time, and returns the progress lines worth printing — one
per change, so a terminal shows what moves and a log stays short.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

READY = "HEALTHY"
FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}


class DeploymentSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    replicas: dict[str, int] = Field(default_factory=dict, description="replica state -> count")
    message: str = ""


class AppSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    message: str = ""
    deployments: dict[str, DeploymentSnapshot] = Field(default_factory=dict)


def snapshot_from_status(status: Any, app_name: str) -> AppSnapshot:
    """Convert `ray.serve.status()` into an `AppSnapshot` (NOT_STARTED when the app is absent)."""
    app = status.applications.get(app_name)
    if app is None:
        return AppSnapshot(status="NOT_STARTED")
    deployments = {
        name: DeploymentSnapshot(
            status=str(getattr(d.status, "value", d.status)),
            replicas={str(getattr(k, "value", k)): int(v) for k, v in d.replica_states.items()},
            message=d.message or "",
        )
        for name, d in app.deployments.items()
    }
    return AppSnapshot(
        status=str(getattr(app.status, "value", app.status)),
        message=app.message or "",
        deployments=deployments,
    )


def _replica_text(replicas: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(replicas.items())) or "no replicas yet"


class ReadinessTracker:
    """Seconds from `started_at` until each watched deployment first reports HEALTHY."""

    def __init__(self, deployments: list[str], *, started_at: float) -> None:
        self._watched = list(deployments)
        self._started_at = started_at
        self._last: dict[str, DeploymentSnapshot] = {}
        self.ready_after: dict[str, float] = {}
        self.app_status = "NOT_STARTED"
        self.app_message = ""

    def observe(self, snapshot: AppSnapshot, now: float) -> list[str]:
        lines = []
        self.app_status, self.app_message = snapshot.status, snapshot.message
        for name in self._watched:
            current = snapshot.deployments.get(name)
            if current is None or current == self._last.get(name):
                continue
            self._last[name] = current
            elapsed = now - self._started_at
            head = f"  [{elapsed:6.1f}s] {name}:"
            replicas = _replica_text(current.replicas)
            if current.status == READY and name not in self.ready_after:
                self.ready_after[name] = elapsed
                lines.append(f"{head} ready ({replicas})")
            elif current.status != READY:
                line = f"{head} {current.status} ({replicas})"
                if current.status in FAILED and current.message:
                    line += f": {current.message}"
                lines.append(line)
        return lines

    @property
    def all_ready(self) -> bool:
        return all(name in self.ready_after for name in self._watched) and (
            self.app_status == "RUNNING"
        )

    def failure(self) -> str | None:
        """A message if the application failed to deploy, else None."""
        if self.app_status == "DEPLOY_FAILED":
            return self.app_message or "the application failed to deploy"
        for name, snap in self._last.items():
            if snap.status == "DEPLOY_FAILED":
                return f"{name}: {snap.message or 'failed to deploy'}"
        return None

    def pending(self) -> list[str]:
        return [name for name in self._watched if name not in self.ready_after]
