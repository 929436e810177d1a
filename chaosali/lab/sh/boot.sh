#!/bin/sh
# The boot loop of a lab host, run in its network namespace: init.sh as pid 1 of a fresh PID, UTS
# and mount namespace, and again after each reboot (pid 1 exiting kills every process of the host).
# init.sh lies beside this script; its variables (LAB_HOSTNAME, LAB_HOST_DIR) pass through.
init="${0%/*}/init.sh"
while :; do
    unshare --mount --uts --pid --fork --mount-proc sh "$init"
    echo reboot
    sleep 0.5
done
