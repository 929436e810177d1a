#!/bin/sh
# pid 1 of a lab host: private mounts and hostname, then every service under a restart loop.
# Environment: LAB_HOSTNAME; LAB_HOST_DIR, the host's directory in the lab state (fs/ holds its
# private files, services/<name>.sh its services, <name>.log their output).
# labctl (labctl.sh) drives the loops through /run/lab/<service>/; `labctl reboot` sends USR1, and
# pid 1 exiting makes the kernel kill every process of the host.
: "${LAB_HOSTNAME:?the host name}" "${LAB_HOST_DIR:?the host directory}"
set -e
hostname "$LAB_HOSTNAME"
# the copied mount table pins every lab's namespaces (nsfs mounts): drop them here, or a namespace
# deleted by `down` would live on, veth and all, inside this host
grep -o ' /run/netns/[^ ]*' /proc/self/mounts | xargs -r -n 1 umount -l
# what a host owns privately: its runtime state, its users' homes, the files faults edit, and a
# node's container runtime, pod logs and pod network (used by real worker nodes, see nodes.py)
for dir in /run /home /etc/kubernetes /var/lib/kubelet /var/lib/containerd /etc/containerd /var/log/pods \
           /var/log/containers /etc/cni/net.d /var/lib/cni; do
    mkdir -p "$dir" "$LAB_HOST_DIR/fs$dir"
    mount --bind "$LAB_HOST_DIR/fs$dir" "$dir"
done
# the kubelet's directory is a small disk of the host's own (over its bind mount), so that a disk
# fill is real and contained: full at 64 MiB, gone at the host's reboot
mount -t tmpfs -o size=64m,mode=0755 lab-kubelet /var/lib/kubelet
for name in passwd shadow hosts resolv.conf sudoers.d; do
    mount --bind "$LAB_HOST_DIR/$name" "/etc/$name"
done
# the host's own CPUs, as lxcfs tells them to the processes of this host (LAB_LXCFS, its mount; empty
# without lxcfs): /proc/stat counts the time of this host's CPUs as its processes used it, and the
# online CPUs are its cpuset's (a kubelet gives its pods' cgroups the CPUs it finds online there)
if [ -n "$LAB_LXCFS" ]; then
    for file in proc/stat proc/cpuinfo proc/loadavg sys/devices/system/cpu/online; do
        mount --bind "$LAB_LXCFS/$file" "/$file"
    done
fi
mkdir -p /run/sshd /run/lab
set +e

trap 'exit 0' USR1
supervise() {
    mkdir -p "/run/lab/$1"
    while :; do
        if [ -e "/run/lab/$1/down" ]; then sleep 0.2; continue; fi
        sh "$2" >>"$LAB_HOST_DIR/$1.log" 2>&1 &
        echo $! > "/run/lab/$1/pid"
        wait $!
        rm -f "/run/lab/$1/pid"
        sleep 1
    done
}
for service in "$LAB_HOST_DIR"/services/*.sh; do
    name="${service##*/}"
    supervise "${name%.sh}" "$service" &
done
# sleep in the background so that the USR1 trap runs at once
while :; do sleep 3600 & wait $!; done
