"""The names of chaosali's entries in an experiment's or a journal's ``extensions`` list: every
writer and every reader takes them from here."""

from __future__ import annotations

from typing import Any

__all__ = ["FMEA", "IMPACT", "SAFETY", "PLAN", "LEDGER", "LOCK", "SPREAD", "entries"]

FMEA = "chaosali"  # in the experiment: the FMEA, the blast-radius caps
IMPACT = "chaosali-impact"  # the impact recording and its measures
SAFETY = "chaosali-safety"  # stop conditions, the halt, the verified revert, a drill that never started
PLAN = "chaosali-plan"  # the plan the plan control judged
LEDGER = "chaosali-ledger"  # the run's fault records
LOCK = "chaosali-lock"  # the environment lock a run did not get, and who held it
SPREAD = "chaosali-spread"  # where the workload's replicas stood before the drill, and the rollouts that moved them


def entries(document: Any, name: str) -> list[dict]:
    """The entries named ``name`` in a document's ``extensions`` (objects only: a journal may have
    been edited by hand)."""
    found = document.get("extensions") if isinstance(document, dict) else None
    return [e for e in found if isinstance(e, dict) and e.get("name") == name] if isinstance(found, list) else []
