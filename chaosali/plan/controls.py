"""The ``plan`` control: a run refuses to start when its plan is refused (``plan_within``).

::

    {"name": "plan", "provider": {"type": "python", "module": "chaosali.plan.controls",
      "arguments": {"preflight": false}}}

Before the experiment (before its steady state, so before any fault) it makes the plan
``chaosali plan`` shows, with the run's own configuration and secrets, and stops the run naming
each reason: a query that matches nothing, an API it cannot reach, a blast radius past its cap, a
disruption budget the targets would violate, a held lock, or (with ``preflight``) a host that
cannot take its fault. After the experiment it puts the plan in the journal (extension
``chaosali-plan``), so that ``chaosali report`` can set the targets planned beside those hit.
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.types import Configuration, Control, Experiment, Journal, Secrets

from chaosali.core import extensions, memory
from chaosali.core.args import boolean
from chaosali.core.controls import check_arguments, fail_closed
from chaosali.plan.build import make_plan

__all__ = ["validate_control", "before_experiment_control", "after_experiment_control"]

_MEMORY = "plan"
JOURNAL_EXTENSION = extensions.PLAN


def validate_control(control: Control) -> None:
    """Check the control's arguments when the experiment is validated."""
    check_arguments(control, before_experiment_control)


@fail_closed("plan")
def before_experiment_control(
    context: Experiment,
    preflight: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> None:
    """
    Make the drill's plan (targets, workloads, budgets, blast radius
    against max_blast_radius and random chaos's caps, the lock; with
    `preflight`, hosts_ready's checks too) and stop the run before any
    activity if the plan is refused, naming each reason.
    """
    plan = make_plan(context, configuration or {}, secrets or {}, preflight=boolean(preflight, "preflight"))
    memory.section(_MEMORY)["plan"] = plan
    if plan["reasons"]:
        raise InterruptExecution("plan_within: the drill is refused before any fault: " + "; ".join(plan["reasons"]))


def after_experiment_control(context: Experiment, state: Journal = None, **arguments: Any) -> None:
    """Put the plan made before the run in the journal."""
    plan = memory.section(_MEMORY).pop("plan", None)
    if plan is not None and state is not None:
        state["extensions"] = [*(state.get("extensions") or []), {"name": JOURNAL_EXTENSION, "plan": plan}]
