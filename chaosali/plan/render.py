"""A plan as text (for a person at a terminal), Markdown (for a ticket or a pull request) or JSON
(for a program, and for ``chaosali report --plan``). The text and Markdown forms show the same
sections, built once."""

from __future__ import annotations

import json
from typing import Any

from chaosali.core.tables import md, md_table, text_table

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "markdown", "json")
Section = tuple[str, list[str], list[list[str]], list[str]]  # title, header, rows, lines after


def render(plan: dict, fmt: str = "text") -> str:
    """The plan in ``fmt``: text, markdown or json."""
    if fmt == "json":
        return json.dumps(plan, indent=2, default=str) + "\n"
    title = f"Plan of {plan['experiment']!r}, made at {plan['made_at']}"
    verdict = ["the drill may run as planned"] if not plan["reasons"] else [f"REFUSED: {r}" for r in plan["reasons"]]
    sections = [*_sections(plan), ("Verdict", [], [], verdict)]
    lines = [f"# {md(title)}", ""] if fmt == "markdown" else [title, ""]
    for name, header, rows, after in sections:
        if fmt == "markdown":
            lines += [f"## {name}", ""] + (md_table(header, rows) if rows else []) + [f"- {md(a)}" for a in after]
        else:
            lines += [name.upper()] + ["  " + row for row in text_table(header, rows)] * bool(rows)
            lines += [f"  {a}" for a in after]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _sections(plan: dict) -> list[Section]:
    sections = [("Activities", ["PHASE", "ACTIVITY", "FUNCTION", "TARGETS", "CHOSEN BY"],
                 [_activity_row(a) for a in plan["activities"]], _random_lines(plan["activities"]))]
    lock = plan.get("lock")
    if lock:
        holder = ("error: " + lock["error"]) if "error" in lock else (
            f"held by {lock['holder']!r} until {lock['expires']}" if lock.get("held") else "free")
        sections.append(("Lock", [], [], [f"Lease {lock['lease']}: {holder}"]))
    if plan.get("spread"):
        sections.append(("Spread before the drill", [], [], [_spread_line(moved) for moved in plan["spread"]]))
    sections.append(("Hosts hit by the method", ["HOST", "ADDRESS", "FAULTS", "PREFLIGHT"],
                     [[h["name"] or "", h["address"], ", ".join(h["faults"]) or "-", _preflight(h)] for h in plan["hosts"]],
                     [] if plan["hosts"] else ["none"]))
    sections.append(("Workloads on the targets", ["WORKLOAD", "READY REPLICAS TOUCHED", "PODS (NODE)"],
                     [[w["workload"], f"{w['touched']} of {w['ready']} ({w['percent']:g} %)",
                       ", ".join(f"{p['pod']} ({p['node']})" for p in w["pods"])] for w in plan["workloads"]],
                     [plan["cluster"]] if plan.get("cluster") else []))
    sections.append(("Disruption budgets", ["BUDGET", "ALLOWS NOW", "READY PODS ON THE TARGETS", "VERDICT"],
                     [[b["budget"], str(b["allowed"]), ", ".join(b["touched"]), "VIOLATED" if b["violated"] else "ok"]
                      for b in plan["budgets"]], [] if plan["budgets"] else ["no budget covers the pods on the targets"]))
    sections.append(("Blast radius", ["SHARE", "HIT", "CAP"], _radius_rows(plan), []))
    if plan.get("fmea"):
        sections.append(("FMEA: expected vs planned", [], [], _fmea_lines(plan["fmea"])))
    return sections


def _spread_line(moved: dict) -> str:
    if "error" in moved:
        return f"Deployment {moved['deployment']}: error: {moved['error']}"
    where = "; ".join(f"{key} {domains}" for key, domains in moved["domains"].items())
    if moved["holds"]:
        return f"Deployment {moved['deployment']}: spread as its constraints want ({where}): left as it is"
    return (f"Deployment {moved['deployment']}: NOT spread as its constraints want ({moved['misplaced']}): the spread "
            "control restarts its rollout before the drill, so its pods on the targets below will move")


def _activity_row(activity: dict) -> list[str]:
    if "error" in activity:
        targets, why = "CANNOT RESOLVE", activity["error"]
    elif "hosts" in activity:
        targets = ", ".join(f"{h['name']} ({h['address']})" if h["name"] else h["address"] for h in activity["hosts"]) or "none"
        why = (activity.get("query") or {}).get("why") or activity.get("why") or (
            "random drill, see below" if "random" in activity else "listed hosts")
    else:
        targets, why = "-", "no targets"
    return [activity["phase"], activity["name"] or "", activity["activity"], targets, why]


def _random_lines(activities: list[dict]) -> list[str]:
    lines = []
    for activity in activities:
        drill = activity.get("random")
        if not drill:
            continue
        lines.append(f"{activity['name']}: {drill['why']}" + ("" if drill["seeded"] else
                     " (NO SEED: the run draws another combination; give a seed to replay this one)"))
        for step in drill["steps"]:
            hosts = ", ".join(f"{h['name']} ({h['address']})" for h in step["hosts"])
            lines.append(f"  entry {step['entry']} {step['action']} on {hosts} at +{step['offset']:g} s")
        if drill["refused"]:
            lines.append(f"  refused: {drill['refused']}")
        else:
            lines.append(f"  within its caps: {_caps_text(drill['blast_radius'])}")
    return lines


def _caps_text(radius: dict) -> str:
    nodes = radius.get("nodes")
    masters = radius["masters"]
    return "; ".join([
        f"{len(radius['hosts'])} host(s)" + (f" (max_hosts {radius['max_hosts']})" if "max_hosts" in radius else ""),
        *([f"{nodes['percent']:g} % of the nodes (max_node_percent {nodes['max_node_percent']:g})"] if nodes else []),
        f"masters hit: {', '.join(masters['hit']) or 'none'} of {len(masters['of'])}" if masters["checked"]
        else f"masters not checked: {masters['why']}",
    ])


def _preflight(host: dict) -> str:
    checked = host.get("preflight")
    if not checked:
        return "not checked"
    failed = [v["reason"] for v in checked["faults"] if not v["ready"]]
    return "ready" if not failed else "FAIL: " + "; ".join(failed)


def _radius_rows(plan: dict) -> list[list[str]]:
    radius, caps = plan["blast_radius"], plan["blast_radius"]["caps"]

    def cap(name: str) -> str:
        return f"{caps[name]:g}" if name in caps else "-"

    rows = [["hosts", str(radius["hosts"]), cap("hosts")]]
    if plan["nodes"]:
        rows.append(["nodes", f"{radius['nodes']} of {plan['nodes']['of']}: {', '.join(plan['nodes']['hit']) or 'none'}",
                     cap("nodes")])
        rows.append(["node share", f"{radius['node_percent']:g} %", cap("node_percent")])
        rows += [[f"replicas of {name}", f"{share:g} %", cap("replica_percent")]
                 for name, share in radius["replica_percent"].items()]
    return rows


def _fmea_lines(fmea: dict) -> list[str]:
    expected: dict[str, Any] = fmea["expected"]
    shown = ", ".join(f"{key} {value}" for key, value in expected.items() if key not in ("failure_mode", "detection"))
    predicted = fmea["predicted"]
    scope = f" in {', '.join(predicted['namespaces'])}" if predicted["namespaces"] else ""
    return [f"expected: {shown}",
            f"planned: {predicted['pods_at_risk']} ready pod(s){scope} on the targets ({predicted['workloads']})",
            *(f"note: {note}" for note in fmea["notes"])]
