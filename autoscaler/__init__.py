"""Queue-depth autoscaling policies, signals and actuators."""
