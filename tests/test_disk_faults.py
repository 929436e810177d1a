"""Disk full (fill_disk): refusals before any host, the shell run here in a directory of the test's
own, and a real fill of a lab host's private 64 MiB /var/lib/kubelet, seen by df."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.cli import main
from chaosali.core.errors import InvalidArgument
from chaosali.host import actions, faults
from chaosali.host.catalogue import fault_kind
from chaosali.host.ssh import Host, run_script
from helpers import chaos_run, journal_of, markers, passed, settings, sh, wait_until

TARGET = ["10.0.0.5"]


@pytest.mark.parametrize("arguments, problem", [
    ({"percent": 0}, "percent 0 must be a number above 0 and at most 100"),
    ({"percent": 101}, "percent 101 must be a number above 0 and at most 100"),
    ({"percent": "nan"}, "must be a number"),
    ({"megabytes": 0}, "megabytes 0 must be a whole number"),
    ({"percent": 50, "megabytes": 10}, "give either percent"),
    ({}, "give either percent"),
    ({"percent": 50, "path": "var/lib"}, "must be an absolute path"),
    ({"percent": 50, "path": "/var/lib/../../etc"}, "without '..'"),
    ({"percent": 50, "path": "/var/$(reboot)"}, "must be an absolute path"),
    ({"percent": 50, "path": "/proc/1"}, "kernel views with no disk to fill"),
    ({"percent": 50, "path": "/sys"}, "kernel views with no disk to fill"),
    ({"percent": 50, "keep_free_megabytes": -1}, "keep_free_megabytes"),
])
def test_fill_refuses_bad_input_before_any_host(no_ssh, arguments, problem):
    with pytest.raises(InvalidArgument, match=problem.replace("(", r"\(").replace("$", r"\$")):
        actions.fill_disk(TARGET, **arguments)


def test_fill_writes_one_file_that_the_restore_removes(marker_root, tmp_path):
    (tmp_path / "disk").mkdir()
    fault = fault_kind("fill_disk").build(duration=60, path=str(tmp_path / "disk"), megabytes=2, keep_free_megabytes=0)
    injected = sh(fault.render())
    assert injected.returncode == 0, injected.stderr
    assert injected.stdout.startswith(f"filled 2 MiB in {tmp_path}/disk/.{fault.id}.fill\n")
    assert (tmp_path / "disk" / f".{fault.id}.fill").stat().st_size == 2 * 1024 * 1024
    assert sh(faults.restore_script_for(None, "disk-")).stdout == f"{fault.id}\n"
    assert list((tmp_path / "disk").iterdir()) == []
    assert sh(faults.restore_script_for(None, "disk-")).stdout == ""


def test_fill_refuses_on_the_host_a_missing_path_and_a_fill_past_the_margin(marker_root, tmp_path):
    missing = sh(fault_kind("fill_disk").build(duration=60, path=str(tmp_path / "none"), megabytes=1).render())
    assert missing.returncode == 3 and "is not a directory on this host" in missing.stderr
    huge = sh(fault_kind("fill_disk").build(duration=60, path=str(tmp_path), percent=100).render())
    assert huge.returncode == 3 and "less than keep_free_megabytes 50" in huge.stderr and "allow_full" in huge.stderr
    assert list(marker_root.iterdir()) == []


# The lab: each host's /var/lib/kubelet is a tmpfs of 64 MiB of its own.
def df(lab, host) -> tuple[int, int]:
    """Size and used KiB of the host's /var/lib/kubelet."""
    fields = run_script(Host(host.address), "df -Pk /var/lib/kubelet | tail -n 1", settings(lab)).split()
    return int(fields[1]), int(fields[2])


def test_fill_disk_in_the_lab_df_before_during_after(lab, chaos_args):
    host, neighbour = lab.hosts[0], lab.hosts[1]
    size, used_before = df(lab, host)
    assert size == 64 * 1024
    filled = actions.fill_disk([host.address], percent=80, keep_free_megabytes=8, duration=3, **chaos_args)
    size, used_during = df(lab, host)
    assert used_during >= size * 0.8 - 1024 and used_during < size * 0.8 + 1024, (used_during, size)
    assert df(lab, neighbour)[1] == used_before, "the fill reached another host's disk"
    assert filled["hosts"][0]["report"][1].split()[4] == f"{round(used_during * 100 / size)}%"
    print(f"\n/var/lib/kubelet of {host.name}: {used_before} KiB used before, {used_during} during, ", end="")
    assert wait_until(lambda: df(lab, host)[1] == used_before, 10) is not None, "the timer did not remove the fill"
    print(f"{df(lab, host)[1]} after its timer")

    # on the host: a fill past the margin is refused, and nothing is left behind
    with pytest.raises(ActivityFailed, match="less than keep_free_megabytes 50"):
        actions.fill_disk([host.address], percent=90, duration=60, **chaos_args)
    assert markers(lab, host) == []

    # the restore heals at once; a second, and one of nothing, are quiet
    again = actions.fill_disk([host.address], megabytes=32, keep_free_megabytes=8, duration=120, **chaos_args)
    assert df(lab, host)[1] >= used_before + 32 * 1024
    restored = actions.restore_disk([host.address], fault_id=again["fault_id"], **chaos_args)
    assert list(restored["restored"].values()) == [[again["fault_id"]]] and df(lab, host)[1] == used_before
    assert list(actions.restore_disk([host.address], **chaos_args)["restored"].values()) == [[]]

    # cleanup finds it by its marker
    actions.fill_disk([host.address], megabytes=16, keep_free_megabytes=8, duration=120, **chaos_args)
    assert main(["cleanup", "--var-file", str(lab.vars_path), "--hosts", host.address]) == 0
    assert df(lab, host)[1] == used_before and markers(lab, host) == []


def test_disk_full_drill_keeps_the_workload(kube, tmp_path):
    run = chaos_run(tmp_path, "disk-full.json", [kube.lab.vars_path], "--var", "fill_percent:int=70",
                    "--var", "fill_seconds:int=8", "--var", "hold_seconds:int=5")
    journal = journal_of(run, tmp_path)
    assert passed(journal)
    filled = next(r["output"] for r in journal["run"] if r["activity"]["name"] == "fill-kubelet-disk")
    assert filled["hosts"][0]["report"][1].split()[4] in ("70%", "71%")
