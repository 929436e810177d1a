# What this run's faults left on this host, once restored: one line each, WHAT<TAB>DETAIL. The
# commands that follow call check ID KIND DEV FILE PIDS per fault (chaosali.host.faults.left_behind):
# DEV, FILE and PIDS are what the fault resolved here (its env), empty when it resolved none. It
# changes nothing.
row() { printf '%s\t%s\n' "$1" "$2"; }
# the processes whose command line ($1: cmdline) or environment ($1: environ) holds $2; the
# pattern goes on grep's stdin, or grep would find it in its own command line
holding() { printf '%s\n' "$2" | grep -lsF -f - /proc/[0-9]*/"$1" | sed 's#^/proc/\([0-9]*\)/.*#\1#'; }
check() {
    d="$CHAOSALI_MARKER_ROOT/$1"
    [ ! -f "$d/restore.sh" ] || row marker "$d: the fault is not restored"
    [ ! -e "$d/backup" ] || row "kubelet backup" "$d/backup: the configuration was not put back"
    found=
    if command -v iptables >/dev/null; then
        found=$(iptables -w -S 2>/dev/null | grep -F -e "$1")
        [ -z "$found" ] || printf '%s\n' "$found" | while read -r rule; do row iptables "$rule"; done
    fi
    # a chain made with the other backend (or with nft) shows in nft's ruleset only
    if [ -z "$found" ] && command -v nft >/dev/null; then
        nft list ruleset 2>/dev/null | grep -F -e "$1" | while read -r rule; do row nftables "$rule"; done
    fi
    if [ -n "$3" ]; then
        qdisc=$(tc qdisc show dev "$3" root 2>/dev/null | grep -E '^qdisc (tbf|netem) ')
        [ -z "$qdisc" ] || row "tc qdisc" "$3: $qdisc"
    fi
    [ -z "$4" ] || [ ! -e "$4" ] || row file "$4"
    for pid in $5; do
        # field 3 of /proc/PID/stat is the state; T: stopped
        state=$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null)
        [ "$state" != T ] || row "stopped process" "$pid is still stopped (SIGSTOP)"
    done
    for pid in $(holding cmdline "$d/"); do row "dead-man timer" "process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"; done
    for pid in $(holding environ "CHAOSALI_FAULT=$1"); do
        row process "$pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    done
}
