"""What the streaming tag parsers (`reasoning`, `minimax_tools`) share.

- `held_tail`: a tag may arrive split across text pieces, so a parser holds back the longest
  tail of its buffer that could still begin a tag, and decides once more text arrives.
- `strip_leading`: white space right after a tag is dropped, up to the first text that is
  not white space, however the pieces fall.
"""

from __future__ import annotations


def held_tail(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `tags`."""
    longest = 0
    for tag in tags:
        for k in range(min(len(tag) - 1, len(text)), longest, -1):
            if text.endswith(tag[:k]):
                longest = k
                break
    return longest


def strip_leading(text: str, stripping: bool) -> tuple[str, bool]:
    """(`text` without its leading white space while `stripping`, whether to go on: yes
    until some text is left)."""
    if not stripping:
        return text, False
    text = text.lstrip()
    return text, not text
