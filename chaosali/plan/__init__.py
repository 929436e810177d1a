"""``chaosali plan``: what a drill would hit, resolved now, with nothing injected.

For each chaosali activity of the method and the rollbacks: the hosts its targets resolve to and
the query that chose them, a random drill's seeded combination, the lock; then the nodes,
workloads and disruption budgets on those hosts, the blast radius against its caps, the FMEA
beside the prediction, and the read-only preflight. ``chaosali.plan.controls`` makes the same plan
at the start of a run and stops the run before any activity when the plan is refused.
"""
