"""`chaos discover chaostoolkit-ali` reads generated data (chaosali/activities.json): it must say what
importing the activity modules says, and must not import them."""

import json
import subprocess
import sys
from pathlib import Path

from chaoslib.discovery.discover import discover_activities

import chaosali
from chaosali import docs
from helpers import REPO

PACKAGE = Path(chaosali.__file__).parent


def imported_activities() -> list[dict]:
    """The discovery done by importing every activity module, as `chaos discover` would show it (JSON);
    chaoslib called here, not through chaosali.docs, so that a slip in the generator cannot hide."""
    found = [activity for module in docs.ACTION_MODULES for activity in discover_activities(module, "action")]
    found += [activity for module in docs.PROBE_MODULES for activity in discover_activities(module, "probe")]
    return json.loads(json.dumps(found))


def test_activity_data_is_up_to_date():
    assert chaosali.ACTIVITIES.read_text() == docs.activities_json(), (
        "chaosali/activities.json is out of date: run python -m chaosali.docs"
    )


def test_every_activity_module_is_discovered():
    # the core's controls.py holds the controls' shared rule, not a control; the lab has no activities
    kinds = {"actions": docs.ACTION_MODULES, "probes": docs.PROBE_MODULES, "controls": docs.CONTROL_MODULES}
    for kind, listed in kinds.items():
        # the package imported, not the checkout: CI also runs these tests against the installed wheel
        found = {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
                 for path in PACKAGE.rglob(f"{kind}.py") if not {"core", "lab"} & set(path.relative_to(PACKAGE).parts)}
        assert found == set(listed), f"chaosali.docs.{kind.upper()[:-1]}_MODULES must list exactly {sorted(found)}"


def test_chaos_discover_shows_what_importing_the_modules_shows(tmp_path):
    result = subprocess.run(
        ["chaos", "--no-log-file", "discover", "chaostoolkit-ali", "--no-install"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    discovery = json.loads((tmp_path / "discovery.json").read_text())
    assert discovery["extension"] == {"name": "chaostoolkit-ali", "version": chaosali.__version__}
    assert discovery["activities"] == imported_activities()
    # and what it shows is what users need: kinds, docs, argument types and defaults
    activities = {a["name"]: a for a in discovery["activities"]}
    assert activities["cut_network"]["type"] == "action" and activities["hosts_reachable"]["type"] == "probe"
    assert "heals by itself" in activities["cut_network"]["doc"]
    arguments = {a["name"]: a for a in activities["cut_network"]["arguments"]}
    assert arguments["duration"] == {"name": "duration", "default": 60, "type": "number"}
    assert arguments["keep_ssh"] == {"name": "keep_ssh", "default": True, "type": "boolean"}


def test_discovery_imports_neither_the_heavy_libraries_nor_the_domains():
    script = (
        "import json, sys, chaosali\n"
        "chaosali.discover()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.partition('.')[0] in ('kubernetes', 'paramiko', 'chaosali'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["chaosali"]
