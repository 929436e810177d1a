"""The wheel carries the whole package: `pip install` of it (not -e) gets every file the code loads.

The wheel is built, as a user's pip would build it, from a copy of the files git knows (tracked, or
new and not ignored) so that nothing else lying in the working tree can slip in or hide a gap.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

pytestmark = pytest.mark.wheel


def git_files(*paths: str) -> list[str]:
    """Files under ``paths`` that a commit would hold: tracked, or untracked and not ignored."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths],
        capture_output=True, text=True,
    )
    if listed.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: {listed.stderr.strip()}")
    files = sorted({name for name in listed.stdout.split("\0") if name})
    return [name for name in files if (REPO / name).is_file()]  # a file deleted in the tree is not shipped


def is_cache(name: str) -> bool:
    return bool(CACHE_PARTS & set(Path(name).parts)) or name.endswith((".pyc", ".pyo"))


@pytest.fixture(scope="module")
def package_files() -> list[str]:
    files = [name for name in git_files("chaosali") if not is_cache(name)]
    assert "chaosali/__init__.py" in files
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in git_files("pyproject.toml", "README.md", "LICENSE", "chaosali"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    wheels = list(out.glob("chaostoolkit_ali-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {[w.name for w in out.iterdir()]}"
    with zipfile.ZipFile(wheels[0]) as archive:
        yield archive


def test_every_package_file_is_in_the_wheel(wheel: zipfile.ZipFile, package_files: list[str]) -> None:
    names = set(wheel.namelist())
    missing = [name for name in package_files if name not in names]
    data = [name for name in missing if not name.endswith(".py")]
    assert not missing, (
        f"{len(missing)} files under chaosali/ are not in the wheel"
        + (f", {len(data)} of them data files the code may load: {data}" if data else "")
        + f"; all missing: {missing}. Widen [tool.setuptools.package-data] in pyproject.toml."
    )


def test_wheel_holds_only_the_package(wheel: zipfile.ZipFile, package_files: list[str]) -> None:
    names = wheel.namelist()
    caches = [name for name in names if is_cache(name)]
    assert not caches, f"caches in the wheel: {caches}"
    stray = [name for name in names if not name.startswith(("chaosali/", "chaostoolkit_ali-"))]
    assert not stray, f"files outside the package in the wheel: {stray}"
    extra = sorted(set(name for name in names if name.startswith("chaosali/")) - set(package_files))
    assert not extra, f"files in the wheel that git does not know under chaosali/: {extra}"


def test_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    """Console script and dependency ranges: an extension needs chaostoolkit-lib, not the CLI."""
    dist_info = next(name.split("/")[0] for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    assert "chaosali = chaosali.cli:main" in wheel.read(f"{dist_info}/entry_points.txt").decode()
    metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
    requires = metadata.get_all("Requires-Dist") or []
    pinned = [line for line in requires if "==" in line.split(";")[0]]
    assert not pinned, f"pinned dependencies break users on other versions: {pinned}"
    runtime = [line for line in requires if "extra ==" not in line]
    names = {re.match(r"[A-Za-z0-9._-]+", line).group(0).lower() for line in runtime}
    assert "chaostoolkit-lib" in names
    assert not names & {"chaostoolkit", "chaostoolkit-kubernetes", "pytest"}, runtime
