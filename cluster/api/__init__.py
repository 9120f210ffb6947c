"""OpenAI-compatible API types shared by every front door and every engine."""
