"""Generated files: the activities `chaos discover` shows (chaosali/activities.json, found by
importing the activity modules as chaoslib does), the activity reference (from the same data) and
the FMEA catalogue (from the experiments' classification).

    python -m chaosali.docs          # rewrites chaosali/activities.json, docs/reference.md and docs/fmea.md

Tests regenerate each and fail when a file is out of date.
"""

import importlib
import inspect
import json
from pathlib import Path

from chaoslib.discovery.discover import discover_actions, discover_probes

from chaosali import ACTIVITIES, discover
from chaosali.impact.measures import LIMITS
from chaosali.host.catalogue import CATALOGUE, ONE_SHOT
from chaosali.report.words import detection_text

__all__ = ["ACTION_MODULES", "PROBE_MODULES", "CONTROL_MODULES", "activities_json", "reference", "fmea_catalogue",
           "write_all"]

# Every module whose public functions experiments may call, by kind, in the order discovery lists them.
ACTION_MODULES = [
    "chaosali.host.actions", "chaosali.cluster.actions", "chaosali.lock.actions", "chaosali.kubemonkey.actions",
    "chaosali.chaos.actions",
]
PROBE_MODULES = [
    "chaosali.host.probes", "chaosali.cluster.probes", "chaosali.service.probes", "chaosali.monitoring.probes",
    "chaosali.lock.probes",
    "chaosali.kubemonkey.probes", "chaosali.impact.probes",
]
# Controls are not part of Chaos Toolkit's discovery; the reference lists them from here.
CONTROL_MODULES = ["chaosali.cluster.controls", "chaosali.lock.controls", "chaosali.spread.controls",
                   "chaosali.impact.controls", "chaosali.plan.controls", "chaosali.safety.controls"]

# What a scenario needs on its targets, by the host actions it calls (the fault catalogue's needs).
_NEEDS = {
    action: ("root over SSH", *map(str, needs))
    for action, needs in {**{entry.action: entry.needs for entry in CATALOGUE}, **ONE_SHOT}.items()
}
_CATEGORIES = ["host", "network", "kubernetes", "chaos"]
DOCS = Path(__file__).resolve().parent.parent / "docs"  # in a checkout, where write_all writes


def write_all(docs: Path = DOCS) -> None:
    ACTIVITIES.write_text(activities_json())  # first: the reference reads it
    (docs / "reference.md").write_text(reference())
    (docs / "fmea.md").write_text(fmea_catalogue(docs.parent / "experiments"))


def activities_json() -> str:
    """The activities of the modules above as chaoslib's discovery describes them, as JSON; a default
    that is not JSON fails here, as it would in `chaos discover`."""
    activities = [activity for module in ACTION_MODULES for activity in discover_actions(module)]
    activities += [activity for module in PROBE_MODULES for activity in discover_probes(module)]
    return json.dumps(activities, indent=2) + "\n"


def reference() -> str:
    discovery = discover()
    lines = [
        "# Activity reference",
        "",
        "Generated from `chaos discover chaostoolkit-ali` by `python -m chaosali.docs`; "
        "do not edit by hand.",
        "",
        "Every activity also takes the Chaos Toolkit `configuration` and `secrets` keywords.",
    ]
    modules: dict[str, list[dict]] = {}
    for activity in discovery["activities"]:
        modules.setdefault(activity["mod"], []).append(activity)
    for module, activities in modules.items():
        lines += ["", f"## `{module}`", ""]
        for activity in sorted(activities, key=lambda a: a["name"]):
            lines += _entry(activity["type"], activity["name"], activity["doc"], activity["arguments"])
    for module in CONTROL_MODULES:
        controls = importlib.import_module(module)
        lines += ["", f"## `{module}` (control)", "", inspect.getdoc(controls) or "", ""]
        for name in ("configure_control", "before_experiment_control", "after_experiment_control"):
            hook = getattr(controls, name, None)
            if hook:
                arguments = [{"name": p.name, **({"default": p.default} if p.default is not p.empty else {})}
                             for p in inspect.signature(hook).parameters.values()
                             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
                lines += _entry("control hook", name, inspect.getdoc(hook), arguments)
    return "\n".join(lines).rstrip() + "\n"


def _entry(kind: str, name: str, doc: str | None, arguments: list[dict]) -> list[str]:
    shown = [a for a in arguments if a["name"] not in ("configuration", "secrets")]
    lines = [f"### `{name}` ({kind})", "", (doc or "(no documentation)").strip(), ""]
    if shown:
        lines += ["| argument | type | default |", "|---|---|---|"]
        for argument in shown:
            default = f"`{json.dumps(argument['default'])}`" if "default" in argument else "required"
            lines.append(f"| `{argument['name']}` | {argument.get('type', '')} | {default} |")
        lines.append("")
    return lines


def fmea_catalogue(experiments: Path) -> str:
    """The scenarios of ``experiments``, grouped by FMEA category, with what each needs."""
    rows: dict[str, list[str]] = {}
    for path in sorted(experiments.glob("*.json")):
        experiment = json.loads(path.read_text())
        fmea = next(e["fmea"] for e in experiment.get("extensions", []) if e.get("name") == "chaosali")
        needs = _needs(experiment)
        rows.setdefault(fmea["category"], []).append(
            f"| [{path.stem}](../experiments/{path.name}) | {fmea['failure_mode']} | {fmea['severity']} | "
            f"{fmea['impact']} | {fmea['recovery']} | {fmea['recovery_seconds']} | {detection_text(fmea['detection'])} | "
            f"{_limits(fmea)} | {', '.join(needs) or '-'} |"
        )
    lines = ["# FMEA catalogue", "",
             "The scenarios of `experiments/`, by category, as each classifies itself in its `extensions` "
             "block (generated by `python -m chaosali.docs`; do not edit by hand). Expected recovery is in "
             "seconds; `chaosali report` measures the real one, and judges the impact limits against the "
             "impact recorder's measures. The impact a drill of one node or one zone expects is what a workload "
             "shaped for it promises (as the lab's `demo/web`: a readiness probe, topology spread constraints "
             "per node and per zone with `whenUnsatisfiable: DoNotSchedule`, a PodDisruptionBudget that keeps "
             "one replica): the drills that say \"a spread workload\" declare the `spread` control, which "
             "puts its replicas back where the constraints want them before the drill, whatever ran before.",
             ""]
    for category in sorted(rows, key=lambda c: _CATEGORIES.index(c) if c in _CATEGORIES else 99):
        lines += [f"## {category}", "",
                  "| scenario | failure mode | severity | impact | recovery | expected s | detection | impact limits "
                  "| needs on the target |",
                  "|---|---|---|---|---|---|---|---|---|", *rows[category], ""]
    return "\n".join(lines).rstrip() + "\n"


def _limits(fmea: dict) -> str:
    """The FMEA's impact limits, e.g. ``max_pods_lost 0``; ``-`` without any."""
    return ", ".join(f"{name} {fmea[name]:g}" for name in LIMITS if name in fmea) or "-"


def _needs(experiment: dict) -> list[str]:
    activities = experiment.get("method", []) + experiment.get("rollbacks", [])
    names = [a["provider"].get("func") for a in activities]
    arguments = [a["provider"].get("arguments", {}) for a in activities]
    # a random drill names the actions of its pool in its arguments
    names += [entry.get("action") for args in arguments for entry in args.get("pool", []) if isinstance(entry, dict)]
    needs = list(dict.fromkeys(need for name in names for need in _NEEDS.get(name, ())))
    if any(a["provider"].get("module", "").startswith(("chaosali.cluster", "chaosali.kubemonkey"))
           for a in activities + experiment.get("steady-state-hypothesis", {}).get("probes", [])):
        needs.insert(0, "a kubeconfig")
    if any((c.get("provider") or {}).get("module") == "chaosali.spread.controls" for c in experiment.get("controls", [])):
        needs.insert(1, "a spread workload")
    return needs


if __name__ == "__main__":
    write_all()
