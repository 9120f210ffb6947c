"""What `modelyard up` prints once the cluster is ready: each model and how to call it."""

from __future__ import annotations

import json
import shlex

from cluster.config.settings import ServedModel
from cluster.placement import PlacementPlan

SIMULATED = "SIMULATED"


def parallelism_text(plan: PlacementPlan) -> str:
    text = f"TP{plan.tensor}" + (f" x PP{plan.pipeline}" if plan.pipeline > 1 else "")
    text += ", EP" if plan.expert else ""
    if plan.gpus and plan.nodes > 1:
        text += f"; {plan.nodes} nodes"
    return text


def model_line(model: ServedModel, plan: PlacementPlan, ready_s: float | None) -> str:
    engine = model.deployment.engine
    label = f"{engine} [{SIMULATED}]" if engine == "sim" else engine
    gpus = f"{plan.gpus} GPU/replica ({parallelism_text(plan)})" if plan.gpus else "no GPUs"
    ready = f"ready in {ready_s:.1f}s" if ready_s is not None else "not ready"
    return (
        f"{model.id}\n"
        f"    engine: {label}   replicas: {model.deployment.replicas}   {gpus}   {ready}"
    )


def curl_command(api_base: str, model_id: str) -> str:
    body = json.dumps(
        {"model": model_id, "messages": [{"role": "user", "content": "Hello!"}]},
        separators=(",", ":"),
    )
    return (
        f"curl -s {api_base}/chat/completions -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer any' -d {shlex.quote(body)}"
    )


def sdk_snippet(api_base: str, model_id: str) -> str:
    return (
        "from openai import OpenAI\n"
        f'client = OpenAI(base_url="{api_base}", api_key="any")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model_id}", messages=[{{"role": "user", "content": "Hello!"}}]\n'
        ")\n"
        "print(reply.choices[0].message.content)"
    )


def render_summary(
    models: list[tuple[ServedModel, PlacementPlan]],
    ready_after: dict[str, float],
    *,
    base_url: str,
) -> str:
    """The ready banner: one block per model (with a curl line), then one SDK example."""
    api_base = f"{base_url}/api/v1"
    lines = [f"modelyard is ready at {api_base} (OpenAI-compatible; also {base_url}/v1)", ""]
    for model, plan in models:
        lines.append(model_line(model, plan, ready_after.get(model.id)))
        lines.append(f"    curl: {curl_command(api_base, model.id)}")
        lines.append("")
    if models:
        first = models[0][0].id
        lines.append("OpenAI SDK (Python):")
        lines.extend("    " + line for line in sdk_snippet(api_base, first).splitlines())
        lines.append("")
    if any(model.deployment.engine == "sim" for model, _ in models):
        lines.append(
            f"{SIMULATED}: 'sim' models run modelyard's simulator, not real weights; their "
            "answers carry a simulated system_fingerprint."
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)
