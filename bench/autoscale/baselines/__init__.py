"""The autoscalers people run today, as replay policies (one module each)."""
