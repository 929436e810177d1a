#!/bin/sh
# labctl: the lab's stand-in for systemctl, run on a lab host (over SSH). It drives the service
# loops of the host's init (init.sh) through /run/lab/<service>/.
usage="usage: labctl restart|stop|start|status SERVICE | services | reboot"

# the service's directory, or exit 5 as systemctl does for a unit it does not know
known() {
    [ -d "/run/lab/$1" ] || { echo "no service $1" >&2; exit 5; }
}
# kill the running process of a service (none is fine: its loop may be between two runs)
kill_service() {
    kill "$(cat "/run/lab/$1/pid" 2>/dev/null)" 2>/dev/null
    true
}
state() {
    if kill -0 "$(cat "/run/lab/$1/pid" 2>/dev/null)" 2>/dev/null; then echo active; else echo inactive; return 3; fi
}

case "$1" in
    restart) known "$2"; rm -f "/run/lab/$2/down"; kill_service "$2" ;;
    stop) known "$2"; touch "/run/lab/$2/down"; kill_service "$2" ;;
    start) known "$2"; rm -f "/run/lab/$2/down" ;;
    status) state "$2" ;;
    services)  # every service and its state, one "NAME STATE" a line
        for dir in /run/lab/*/; do
            [ -d "$dir" ] || continue
            name="${dir%/}"; name="${name##*/}"
            echo "$name $(state "$name")"
        done ;;
    reboot) kill -USR1 1 ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
