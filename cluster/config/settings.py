"""The cluster file: one YAML document describing gateway, Ray, telemetry and served models.

Every setting is defined once, here. The Helm chart renders this same document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cluster.config.autoscaling import AutoscalingSettings
from cluster.config.catalog import Catalog, ModelSpec, PriceTable
from cluster.config.faults import KVEventFaults
from cluster.config.gateway_security import GatewaySecurityFields
from cluster.config.vllm_args import VLLMDeploymentSettings
from cluster.routing.config import RoutingSettings

GpuKind = Literal["h100", "h200", "a100"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimSettings(_Strict):
    """Knobs of the simulator engine (see deployments/engines/sim)."""

    gpu: GpuKind = "h100"
    speedup: float = Field(default=1.0, gt=0, description="simulated seconds per wall second")
    kv_blocks: int | None = Field(
        default=None, ge=1, description="override the KV capacity derived from GPU memory"
    )
    block_size: int = Field(default=16, ge=1)
    max_num_seqs: int = Field(default=256, ge=1)
    max_num_batched_tokens: int = Field(default=8192, ge=16)
    seed: int = 0
    stall_marker: str | None = Field(
        default=None,
        min_length=1,
        description="fault injection for tests, never in production: a prompt containing "
        "this text freezes the engine's step loop for good (every request on the replica "
        "stops making progress, as with a hung GPU); null: off",
    )


class ReplicaHealthSettings(_Strict):
    """`models[].health:` — how a model replica is judged healthy (`ModelReplica.check_health`).

    Ray Serve calls the check every `check_period_s` and replaces a replica after three
    failed checks in a row (or a check that takes over `check_timeout_s`). The check fails
    when the engine reports itself broken, and when the progress watchdog
    (`deployments.watchdog`) sees requests in flight but no output for `stall_after_s`:
    the replica then ends its requests with `engine_unavailable` (those not started are
    retried on another replica by the gateway) and refuses new ones. A stalled replica is
    replaced `stall_after_s` + at most 3 x `check_period_s` after its last output.
    """

    stall_after_s: float = Field(
        default=60.0,
        gt=0,
        description="watchdog: requests in flight and no output from the engine for this "
        "long mark the replica unhealthy (raise it above the longest prefill a replica may "
        "run: a prompt's first token is its first output)",
    )
    check_period_s: float = Field(default=10.0, gt=0, description="Serve's health check period")
    check_timeout_s: float = Field(
        default=30.0, gt=0, description="a health check taking longer than this fails"
    )


class ModelDeployment(_Strict):
    """One served model: which catalog entry, on which engine, how many replicas.

    Without `autoscaling`, `replicas` is fixed; with it, `replicas` is where the deployment
    starts (Serve's `initial_replicas`, clamped into the autoscaling bounds).
    """

    id: str = Field(min_length=1, description="catalog id or alias")
    engine: Literal["sim", "vllm"] = "sim"
    replicas: int = Field(default=1, ge=1)
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="size the deployment by its queue (autoscaler/); null: fixed"
    )
    sim: SimSettings = Field(default_factory=SimSettings)
    health: ReplicaHealthSettings = Field(default_factory=ReplicaHealthSettings)
    prices: PriceTable | None = Field(
        default=None, description="operator price table; overrides the catalog's"
    )
    max_ongoing_requests: int | None = Field(
        default=None,
        ge=1,
        description="requests one replica admits at once; null: twice the engine's batch "
        "size (deployments/placement.py)",
    )
    max_queued_requests: int = Field(
        default=1024,
        ge=1,
        description="requests each gateway replica may hold waiting for a free replica of "
        "this model; past it new ones are refused at once (503 + Retry-After)",
    )
    retry_after_s: int = Field(
        default=1, ge=1, description="the Retry-After a refused (overloaded) request gets"
    )
    reserve_gpus: bool = Field(
        default=True,
        description="reserve the GPUs the parallelism needs through a placement group",
    )
    ray_resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each replica needs, e.g. {pool_a: 1}: pins the "
        "model's replicas to the nodes that declare them (a node pool)",
    )
    vllm: VLLMDeploymentSettings | None = Field(
        default=None, description="settings of the vLLM engine (engine: vllm)"
    )
    kv_event_faults: KVEventFaults | None = Field(
        default=None,
        description="TESTING ONLY: damage the KV events this model's replicas publish "
        "(drop, duplicate, delay; cluster/config/faults.py); null: none",
    )


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


AuthMode = Literal["off", "keys"]


class AuthSettings(_Strict):
    """API keys accepted by both front doors (`Authorization: Bearer <key>`).

    `mode: keys` checks managed keys (`modelyard keys create`, stored in the ledger's
    database as peppered hashes; the pepper is read from the environment variable named by
    `pepper_env`, e.g. a Kubernetes Secret). Static keys are configured only as SHA-256 hex
    digests (`python -m cluster.gateway.auth` prints one), never in plaintext; inputs are hidden
    from validation errors in case a key was pasted by mistake. With `mode: off` and no
    digest configured, authentication is off (local mode).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    mode: AuthMode = Field(
        default="off", description="off: static digests only (none: open); keys: managed keys"
    )
    pepper_env: str = Field(
        default="MODELYARD_KEY_PEPPER",
        min_length=1,
        description="environment variable holding the secret pepper of managed key hashes",
    )

    api_key_sha256: list[str] = Field(
        default_factory=list, description="SHA-256 hex digests of the accepted API keys"
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="a file with more digests, one a line ('#' comments), e.g. a mounted Secret",
    )

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        digests = [item.strip().lower() for item in value]
        for i, digest in enumerate(digests):
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    f"item {i} is not a SHA-256 hex digest (64 hex characters); "
                    "configure the digest of a key, never the key itself"
                )
        return digests


GatewayIngress = Literal["proxy", "direct"]


class GatewaySettings(GatewaySecurityFields):
    """`gateway:` — where clients reach the gateway deployment, and how.

    `ingress` picks Ray Serve's front door (`deployments.ingress` turns it into the
    environment every Serve process reads at import, so it is applied before Ray starts):

    - `direct`: Serve's throughput-optimised mode. Each gateway replica serves HTTP itself
      on `port` (replica i of one node on `port + i`): no proxy actor in the request path,
      and handle calls to the model replicas go over gRPC. Serve's proxy still runs on the
      head node, on another port. Measured on the 2-core development host: 14 ms less at
      p50 and 24 ms less at p99 per request than `proxy` (docs/benchmarks/overhead.md).
      The default: the integration suite passes in this mode.
    - `proxy`: Serve's default mode. One Serve proxy per node listens on `port` and
      forwards each request to a gateway replica by actor call.

    The gRPC API (`grpc_port`) runs inside every gateway replica in both modes. TLS, the
    admin listener, CORS and media URLs: `cluster.config.gateway_security`.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    grpc_port: int | None = Field(default=None, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="largest request body (413 past it)"
    )
    max_header_count: int = Field(
        default=100, ge=8, description="most request header fields (431 past it)"
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="largest sum of request header names and values in bytes (431 past it)",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="a request body must arrive whole within this many seconds of the "
        "request's start (408 past it): a body that trickles in cannot hold a request open",
    )
    send_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="a streamed response whose client reads nothing for this long (the "
        "socket's send buffers stay full) is cut off and its engine requests aborted",
    )
    # Longer than clients' own idle expiry (httpx, under the OpenAI SDK: 5 s), so a client
    # never reuses a pooled connection at the moment the server closes it (a ReadError).
    keep_alive_timeout_s: int = Field(
        default=90,
        ge=1,
        description="an idle keep-alive connection is closed after this many seconds "
        "(the Serve HTTP server's keep_alive_timeout_s; Serve's default, and longer than "
        "clients' pool expiry)",
    )
    replicas: int = Field(default=1, ge=1)
    ray_resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each gateway replica needs, e.g. {ingress: 1}: "
        "pins the gateway to the nodes that declare them",
    )
    request_timeout_s: float = Field(default=600.0, gt=0)
    stall_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="watchdog: an engine request that sends nothing for this long (no first "
        "token, no next token) is aborted and the client gets 504 / an SSE error event",
    )
    max_choices: int = Field(
        default=16, ge=1, description="most choices (`n`) one request may ask for"
    )
    max_prompts: int = Field(
        default=32, ge=1, description="most prompts in one completions request"
    )
    max_generations: int = Field(
        default=128,
        ge=1,
        description="most engine requests one API request fans out into (prompts x n)",
    )
    ingress: GatewayIngress = Field(
        default="direct",
        description="direct: gateway replicas listen on port.. themselves (no Serve proxy "
        "hop); proxy: Serve's proxy listens on port",
    )

    @property
    def http_ports(self) -> list[int]:
        """Ports clients send HTTP to on one node: `direct` gives replica i `port + i`."""
        count = self.replicas if self.ingress == "direct" else 1
        return [self.port + i for i in range(count)]

    @model_validator(mode="after")
    def _ports_apart(self) -> GatewaySettings:
        ports = self.http_ports
        if ports[-1] > 65535:
            raise ValueError(
                f"ingress direct: {self.replicas} gateway replicas listen on ports "
                f"{ports[0]}-{ports[-1]}, past 65535; lower gateway.port"
            )
        span = str(ports[0]) if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"
        for name in ("grpc_port", "admin_port"):
            value = getattr(self, name)
            if value is not None and value in ports:
                raise ValueError(f"{name} {value} is also the gateway's HTTP port ({span})")
        if self.admin_port is not None and self.admin_port == self.grpc_port:
            raise ValueError(f"admin_port {self.admin_port} is also the gateway's grpc_port")
        return self


class LedgerSettings(_Strict):
    """`ledger:` — where usage records, reservations and managed keys are stored.

    The database URL may hold a password, so the file names only the environment variable
    that carries it (e.g. from a Kubernetes Secret). Without that variable set, SQLite in
    WAL mode at `sqlite_path` is used.
    """

    url_env: str = Field(
        default="MODELYARD_LEDGER_URL",
        min_length=1,
        description="environment variable holding a SQLAlchemy URL (postgresql://...)",
    )
    sqlite_path: Path = Field(
        default=Path(".modelyard/ledger.sqlite"),
        description="SQLite file used when the url_env variable is not set",
    )


class RaySettings(_Strict):
    address: str | None = Field(default=None, description="join this cluster; null starts one")
    num_cpus: int | None = Field(default=None, ge=1)
    virtual_gpus: int = Field(
        default=0,
        ge=0,
        description="GPUs to declare on a local head node so placement groups can be "
        "scheduled without real GPUs (simulated engines only)",
    )
    gpus_per_node: int = Field(default=8, ge=1)
    namespace: str = "modelyard"


class TelemetrySettings(_Strict):
    traces_exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None
    service_name: str = "modelyard"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="level of Ray Serve's logs in every replica and of the gateway "
        "replica's own loggers; no level logs keys, prompts or completions",
    )


class RoutingConfig(RoutingSettings):
    """`routing:` — the router's settings (`cluster.routing.RoutingSettings`, used by
    every model deployment's Serve request router) plus how the live router gets its inputs.
    """

    stats_period_s: float = Field(
        default=1.0, gt=0, description="how often each replica reports its load to routers"
    )
    kv_events: bool = Field(
        default=True, description="replicas publish KV events and routers subscribe to them"
    )
    failover_attempts: int = Field(
        default=3,
        ge=1,
        description="tries for a request whose replica fails before its first chunk",
    )
    debug_endpoint: bool = Field(
        default=False, description="GET /debug/routing on the gateway (loopback clients only)"
    )


class ServedModel(_Strict):
    """A catalog entry joined with how it is deployed: what the object graph passes around."""

    spec: ModelSpec
    deployment: ModelDeployment

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def prices(self) -> PriceTable | None:
        return self.deployment.prices or self.spec.prices

    @property
    def deployment_name(self) -> str:
        """A Ray Serve deployment name derived from the public id."""
        return "model-" + "".join(c if c.isalnum() else "-" for c in self.spec.id).strip("-")


class ClusterConfig(_Strict):
    name: str = "modelyard"
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    catalog: list[ModelSpec] = Field(
        default_factory=list, description="models added to the built-in catalog"
    )
    models: list[ModelDeployment] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_duplicate_models(self) -> ClusterConfig:
        ids = [m.id for m in self.models]
        for i, model_id in enumerate(ids):
            if model_id in ids[:i]:
                raise ValueError(f"models[{i}].id: {model_id!r} is served twice")
        return self

    def served_models(self, builtin: Catalog) -> list[ServedModel]:
        """Join each deployment with its catalog entry (validated by the loader)."""
        catalog = builtin.merged(self.catalog)
        served = []
        for deployment in self.models:
            spec = catalog.find(deployment.id)
            if spec is None:  # the loader rejects this first; kept for direct callers
                raise KeyError(deployment.id)
            served.append(ServedModel(spec=spec, deployment=deployment))
        return served
