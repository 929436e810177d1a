"""Kubernetes: an API client from Chaos Toolkit configuration, and kubectl-like actions and probes."""
