"""Where in a document a pydantic error points, written as a reader would: `models[2].sim.speedup`.

Shared by the config loader and request validation (both name the field in their errors); it
sits at the bottom of `cluster` so neither imports the other.
"""

from __future__ import annotations


def field_path(loc: tuple[int | str, ...]) -> str:
    """('models', 2, 'sim', 'speedup') -> 'models[2].sim.speedup'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
