"""`chaosali --version` tells the installed distribution's version; CHANGELOG.md's top entry is it."""

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

from helpers import REPO


def test_version_prints_the_installed_distribution_version() -> None:
    done = subprocess.run([sys.executable, "-m", "chaosali.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"chaosali {version('chaostoolkit-ali')}"


def test_changelog_top_entry_is_the_pyproject_version() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    entries = re.findall(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert entries, "CHANGELOG.md has no '## [VERSION] - DATE' entry"
    assert entries[0] == declared, (
        f"CHANGELOG.md's top entry is {entries[0]} but pyproject.toml says {declared}: "
        "write the release's entry at the top of CHANGELOG.md")
