"""The environment lock: one drill at a time on a cluster, through a Kubernetes Lease.

``chaosali.lock.controls`` takes the lock for a whole run (or stops the run, naming who holds
it) and renews it while the run lasts; ``chaosali.lock.actions`` lock and unlock explicitly;
``chaosali.lock.probes`` tells who holds it. By default the lock is the Lease
``default/chaosali-drill-lock`` of the cluster the run's kubeconfig names.
"""
