"""The lab's shell scripts (package data), parsed by sh and, where it is installed, shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from importlib.resources import files

import pytest

from chaosali.lab.hosts import Lab, script

SCRIPTS = sorted(entry.name for entry in (files("chaosali.lab") / "sh").iterdir() if entry.name.endswith(".sh"))


def test_the_lab_installs_every_script_it_ships(tmp_path):
    lab = Lab(name="csshell", state_root=tmp_path)
    lab.state_dir.mkdir()
    lab._install_tools()
    installed = {path.name: path.read_text() for path in lab.tools.iterdir()}
    assert installed == {"boot.sh": script("boot.sh"), "init.sh": script("init.sh"), "labctl": script("labctl.sh"),
                         "kubelet.sh": script("kubelet.sh")}
    assert set(SCRIPTS) == {"boot.sh", "init.sh", "kubelet.sh", "labctl.sh"}
    assert all(path.stat().st_mode & 0o111 for path in lab.tools.iterdir())


@pytest.mark.parametrize("name", SCRIPTS)
def test_sh_parses_it(name, tmp_path):
    path = tmp_path / name
    path.write_text(script(name))
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed (apt-get install shellcheck)")
@pytest.mark.parametrize("name", SCRIPTS)
def test_shellcheck_finds_nothing(name, tmp_path):
    path = tmp_path / name
    path.write_text(script(name))
    result = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_labctl_refuses_an_unknown_command_and_service(tmp_path):
    labctl = tmp_path / "labctl"
    labctl.write_text(script("labctl.sh"))
    usage = subprocess.run(["sh", str(labctl), "nonsense"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: labctl restart|stop|start|status SERVICE")
    unknown = subprocess.run(["sh", str(labctl), "restart", "no-such-service"], capture_output=True, text=True)
    assert unknown.returncode == 5 and unknown.stderr == "no service no-such-service\n"

