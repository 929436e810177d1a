"""Evidence that a run's faults took effect, gathered through the run and forgotten when it ends.

The faults are the run's ledger (:mod:`chaosali.core.ledger`): one that did not go in, wholly or on
some of its targets, fails the judgement at once. Whatever can tell whether a fault took effect
tells what it saw (``observed``):

- an **expected effect**, that a probe or the fault itself measured and that must be seen (a cut
  host that stops answering, a new boot identity, a load sampled on the host, pods a drain
  evicted): one not seen means the fault did not take effect;
- a **sighting** (a watch that saw the API or the nodes go down): it proves when it is seen, and
  proves nothing either way when it is not (a resilient system shows no outage).

A live source, asked when the run is judged (the impact recorder: did the recording see impact?),
adds sightings (``add_source``). ``judgement`` says whether the faults are proven: something was
seen, and no expected effect was missed. The judgement is about the fault, not about the system:
how much impact it caused is judged against the FMEA elsewhere (``impact_within``).
"""

from __future__ import annotations

from typing import Callable

from chaosali.core import ledger, memory

__all__ = ["observed", "add_source", "judgement"]

_OBSERVED = "fault effects observed"
_SOURCES = "live evidence sources"


def observed(what: str, seen: bool, detail: str, *, expected: bool = True) -> None:
    """Tell what was seen of a fault's effect. ``expected``: the effect must be seen, or the fault
    did not take effect; otherwise a sighting, kept only when seen. Kept only after a fault was
    injected: what the steady state's first check sees is no evidence of a fault."""
    if not any(fault.injected for fault in ledger.faults()) or not (expected or seen):
        return
    memory.section(_OBSERVED)[what] = {"what": what, "seen": bool(seen), "detail": detail, "expected": expected}


def add_source(name: str, source: Callable[[], list[dict]]) -> None:
    """Ask ``source`` for its sightings (dicts as ``observed`` keeps them) each time the run is judged."""
    memory.section(_SOURCES)[name] = source


def judgement() -> dict:
    """Whether this run's faults are proven: ``proven`` (None while nothing was injected), the
    faults, the evidence and, when not proven, ``why``."""
    records = ledger.faults()
    faults = [{"kind": f.kind, "detail": f"{f.id} on {', '.join(f.targets) or 'no target'}", "state": f.state,
               **({"not_injected": f.not_injected} if f.not_injected else {})} for f in records]
    failed = [f for f in records if f.not_injected]
    evidence = list(memory.section(_OBSERVED).values())
    if any(f.injected for f in records):
        evidence += [entry for source in list(memory.section(_SOURCES).values()) for entry in source()]
    missed = [entry for entry in evidence if entry["expected"] and not entry["seen"]]
    if failed:
        proven, why = False, "; ".join(f"{f.kind} {f.id} not injected: {f.not_injected}" for f in failed)
    elif not records:
        proven, why = None, "no fault was injected in this run yet: nothing to prove"
    elif missed:
        proven, why = False, "; ".join(f"{entry['what']}: {entry['detail']}" for entry in missed)
    elif not any(entry["seen"] for entry in evidence):
        proven, why = False, ("no evidence that the fault took effect: no evidence probe, watch or impact "
                              "recording saw it; add one (see docs/report.md)")
    else:
        proven, why = True, ""
    return {"proven": proven, "faults": faults, "evidence": evidence, **({"why": why} if why else {})}
