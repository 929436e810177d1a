#!/bin/sh
# The boot loop of a lab host, run in its network namespace: init.sh as pid 1 of a fresh PID, UTS
# and mount namespace, and again after each reboot (pid 1 exiting kills every process of the host).
# init.sh lies beside this script; its variables (LAB_HOSTNAME, LAB_HOST_DIR, LAB_LXCFS) pass through.
# LAB_CGROUP: the host's cgroup (its CPUs, made by hosts.py), joined first so that every process of
# the host, after each reboot too, is born in it.
init="${0%/*}/init.sh"
if [ -n "$LAB_CGROUP" ]; then
    for controller in cpuset cpu cpuacct; do
        echo $$ > "/sys/fs/cgroup/$controller/$LAB_CGROUP/cgroup.procs"
    done
fi
while :; do
    unshare --mount --uts --pid --fork --mount-proc sh "$init"
    echo reboot
    sleep 0.5
done
