"""The ``spread`` control: before the drill, the workload's replicas are where its topology spread
constraints want them.

::

    {"name": "spread", "provider": {"type": "python", "module": "chaosali.spread.controls",
      "arguments": {"namespace": "${workload_namespace}", "name": "${workload_name}"}}}

A drill that loses one node expects partial impact only if the replicas are spread over the
nodes; the drill before it (a drain, an eviction, a zone outage) may have left them all on one.
The scheduler places a pod once and never moves it: production puts replicas back with the
descheduler, or with a rollout restart after the disruption. This control does the latter,
before the experiment (after the ``lock`` control, before the ``impact`` control's recording and
the steady state's first check): when the Deployment's live pods violate its
``topologySpreadConstraints`` (skew over ``maxSkew`` across the nodes a new pod could go to) or
stand on a node no new pod could go to (cordoned, NotReady), its rollout is restarted, as
``kubectl rollout restart`` does, and the control waits until it rolled out and its old pods are
gone, at most ``timeout`` seconds, up to 3 times. A placement that still does not hold stops the
run before any activity (it fails closed): the drill's verdict would be about the placement.
The journal says what it found and did (extension ``chaosali-spread``). Declare it after the
``lock`` control: controls run in the order they are declared.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Control, Experiment, Journal, Secrets

from chaosali.cluster.api import connect
from chaosali.cluster.spread import respread
from chaosali.core import args, extensions, memory
from chaosali.core.controls import check_arguments, fail_closed

__all__ = ["validate_control", "before_experiment_control", "after_experiment_control", "EXTENSION"]

EXTENSION = extensions.SPREAD
_MEMORY = "spread"


def validate_control(control: Control) -> None:
    """Check the control's arguments when the experiment is validated."""
    check_arguments(control, before_experiment_control, required=("namespace", "name"))


@fail_closed("spread")
def before_experiment_control(
    context: Experiment,
    namespace: str = None,
    name: str = None,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> None:
    """
    Before the experiment, put the replicas of Deployment `namespace`/`name`
    where its topologySpreadConstraints want them: when its pods violate them,
    or stand on a node no new pod could go to (cordoned, NotReady), restart
    its rollout (as kubectl rollout restart) and wait until it rolled out, at
    most `timeout` seconds, up to 3 times. A spread that still does not hold
    stops the run before any activity.
    """
    namespace = args.dns_label(namespace, "namespace")
    name = args.dns_label(name, "name")
    wait = args.seconds(timeout, "timeout", 3600)
    with connect(configuration, secrets) as cluster:
        memory.section(_MEMORY)["done"] = respread(cluster, namespace, name, wait)


def after_experiment_control(context: Experiment, state: Journal = None, **arguments: Any) -> None:
    """Say in the journal where the replicas stood before the drill and whether they were moved."""
    done = memory.section(_MEMORY).pop("done", None)
    if done is not None and state is not None:
        state["extensions"] = [*(state.get("extensions") or []), {"name": EXTENSION, **done}]
