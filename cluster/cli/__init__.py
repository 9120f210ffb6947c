"""The `modelyard` command line: the composition root that builds and starts the object graph.

Subcommands live in their own modules and import Ray, Serve or `deployments` only inside
the function that runs them, so `modelyard --help` and `modelyard models list` start fast.
"""
