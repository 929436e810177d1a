#!/bin/sh
# The kubelet of a real lab worker, as a service of its host: what a node's systemd unit would do
# before it (ExecStartPre), then the kubelet itself.
# Usage: kubelet.sh CGROUP_PARENT IMAGE_LIST KUBELET [KUBELET ARGS...]
# - waits for the host's containerd, and imports each image of IMAGE_LIST ("NAME ARCHIVE" a line)
#   that it lacks (nothing can be pulled in the lab);
# - creates the kubelet's cgroup parent under every hierarchy (with the parent's cpus and mems);
# - gives the kubelet host-private copies of the kernel settings it would set: they are the
#   machine's, shared by every host, and not the lab's to change.
set -e
cgroup="$1" images="$2"
shift 2
images_of_node() { ctr --address /run/containerd/containerd.sock --namespace k8s.io images "$@"; }

tries=0
until images_of_node ls -q >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "kubelet.sh: containerd does not answer on /run/containerd/containerd.sock" >&2; exit 1; }
    sleep 0.1
done
have="$(images_of_node ls -q)"
while read -r name archive; do
    printf '%s\n' "$have" | grep -qxF "$name" || images_of_node import "$archive" >/dev/null
done < "$images"

for hierarchy in /sys/fs/cgroup/*/; do
    [ -L "${hierarchy%/}" ] && continue
    mkdir -p "$hierarchy$cgroup"
    for file in cpuset.cpus cpuset.mems; do
        if [ -e "$hierarchy$file" ] && [ -z "$(cat "$hierarchy$cgroup/$file")" ]; then
            cat "$hierarchy$file" > "$hierarchy$cgroup/$file"
        fi
    done
done

mkdir -p /run/kubelet-sysctl
for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
           kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
    grep -q " /proc/sys/$key " /proc/self/mountinfo && continue
    copy="/run/kubelet-sysctl/$(echo "$key" | tr / .)"
    cat "/proc/sys/$key" > "$copy"
    mount --bind "$copy" "/proc/sys/$key"
done

exec "$@"
