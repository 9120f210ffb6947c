"""`python -m cluster.gateway.auth`: print the SHA-256 digest to configure for an API key.

The key is read from stdin (not argv, which other users of the machine can see in `ps`):

    printf %s "$KEY" | python -m cluster.gateway.auth
"""

from __future__ import annotations

import sys

from cluster.gateway.auth.keys import digest_key


def main() -> int:
    key = sys.stdin.read().strip()
    if not key:
        print('usage: printf %s "$KEY" | python -m cluster.gateway.auth', file=sys.stderr)
        return 2
    print(digest_key(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
