"""Drills as Kubernetes Jobs and CronJobs: the manifests (``chaosali schedule``), the runner that
keeps each run's journal in the cluster, and the runs read back (``chaosali runs``)."""
