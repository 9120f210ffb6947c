"""Calling modelyard's gRPC API from Python with the typed client.

Start a cluster with the gRPC port on (`gateway.grpc_port: 50051` in the cluster file, e.g.
`make up` with the packaged local.yaml), then:

    MODELYARD_API_KEY=sk-... python docs/examples/grpc_client.py --target 127.0.0.1:50051

(no key is needed when the cluster has none configured: local mode). It lists the models,
streams a chat completion and prints its usage (run it twice: the second run reports cached
prompt tokens), forces a tool call with a named `tool_choice`, and shows what a deadline and
a bad request raise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from cluster.errors import DeadlineExceeded, InvalidRequest, ModelyardError
from cluster.gateway.grpc.client import (
    ChatRequest,
    ModelyardClient,
    function_tool,
    named_tool_choice,
    system,
    user,
)

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
SYSTEM = "You are a terse assistant for an internal build service. " * 20  # a shared prefix


async def main(target: str, api_key: str | None, model: str) -> dict[str, object]:
    """Run the tour; returns what it saw (the example's test checks it)."""
    seen: dict[str, object] = {}
    async with ModelyardClient(target, api_key=api_key) as client:
        models = await client.list_models(deadline_s=5)
        seen["models"] = [m.id for m in models]
        print("models:", ", ".join(f"{m.id} ({m.engine})" for m in models))

        # Streaming chat: text arrives in deltas; the last chunk carries usage.
        request = ChatRequest(
            model=model,
            messages=[system(SYSTEM), user("Summarise the last build in one line.")],
            max_tokens=32,
        )
        for attempt in (1, 2):
            text: list[str] = []
            async for chunk in client.chat(request, deadline_s=30):
                text.extend(choice.delta.content for choice in chunk.choices)
                if chunk.HasField("usage"):
                    usage = chunk.usage
            print(f"chat #{attempt}: {''.join(text)!r}")
            print(
                f"  usage: prompt={usage.prompt_tokens} (cached {usage.cached_tokens}) "
                f"completion={usage.completion_tokens}"
            )
            seen[f"cached_{attempt}"] = usage.cached_tokens

        # A named tool_choice forces a call of that function; arguments are JSON.
        forced = ChatRequest(
            model=model,
            messages=[user("What's the weather in Oslo?")],
            tools=[function_tool("get_weather", WEATHER, "Current weather for a city.")],
            tool_choice=named_tool_choice("get_weather"),
            max_tokens=128,
        )
        response = await client.chat_unary(forced, deadline_s=30)
        call = response.choices[0].message.tool_calls[0]
        seen["tool_arguments"] = json.loads(call.function.arguments)
        print(f"tool call: {call.function.name}({call.function.arguments})")

        # Errors are typed: a bad field names itself, a passed deadline says so.
        try:
            await client.chat_unary(ChatRequest(model=model, messages=[user("hi")], n=0))
        except InvalidRequest as err:
            seen["invalid_param"] = err.param
            print(f"refused: param={err.param!r}: {err.message}")
        try:
            long = ChatRequest(model=model, messages=[user("Write a long story.")], max_tokens=4000)
            async for _ in client.chat(long, deadline_s=0.05):
                pass
            seen["deadline"] = "finished in time"
        except DeadlineExceeded as err:
            seen["deadline"] = "exceeded"
            print(f"deadline: {err.message}")
        except ModelyardError as err:
            seen["deadline"] = type(err).__name__
    return seen


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--model", default="qwen/qwen3-coder-flash")
    args = parser.parse_args()
    asyncio.run(main(args.target, os.environ.get("MODELYARD_API_KEY"), args.model))
