"""`modelyard bench autoscale`: replay arrivals against simulated replicas under several
autoscaling policies (modelyard's and the baselines people run today)."""
