"""The Ray Serve application: gateway and model deployments, engines, placement groups.

Nothing is imported eagerly here so that `deployments.engines.sim` can be used without Ray.
"""
