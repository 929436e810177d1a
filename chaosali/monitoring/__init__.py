"""Monitoring: PromQL queries and alerts of a Prometheus, as probes and for the impact recording."""
