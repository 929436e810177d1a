# Preflight: can this host take chaosali's faults and heal them? Its values come first
# (chaosali.host.preflight). It changes nothing: kernel features are tried in a network namespace
# of its own, which vanishes with the command, and the marker root's test directory is removed.
# One line per check: NAME<TAB>ok|fail|info<TAB>detail.
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
if [ "$(id -u)" = 0 ]; then
    row privilege ok "root"
else
    row privilege fail "runs as $(id -un), not root: set configuration ssh_sudo to true (with passwordless sudo) or log in as root"
fi
for command in $CHAOSALI_COMMANDS; do
    if found=$(command -v "$command"); then
        row "command $command" ok "$found"
    else
        row "command $command" fail "$command not found on PATH ($PATH)"
    fi
done
if [ "$CHAOSALI_IPTABLES" != yes ]; then
    :
elif command -v iptables >/dev/null; then
    if out=$(iptables -w -S INPUT 2>&1 >/dev/null); then
        row iptables ok "$(iptables -V 2>&1)"
    else
        row iptables fail "iptables cannot read the rules: $out"
    fi
else
    row iptables fail "iptables not found on PATH ($PATH)"
fi
# a kernel feature is tried where it cannot touch the host: a network namespace of the command's own
isolated=no
if unshare --net true 2>/dev/null; then isolated=yes; fi
printf '%s\n' "$CHAOSALI_QDISCS" | while read -r kind arguments; do
    [ -n "$kind" ] || continue
    if ! command -v tc >/dev/null; then
        row "qdisc $kind" fail "tc not found on PATH ($PATH)"
    elif [ "$isolated" = yes ]; then
        # shellcheck disable=SC2086 # the qdisc's own arguments
        if out=$(unshare --net tc qdisc add dev lo root "$kind" $arguments 2>&1); then
            row "qdisc $kind" ok "tc $kind"
        else
            row "qdisc $kind" fail "no sch_$kind (tc: $out)"
        fi
    elif [ -d "/sys/module/sch_$kind" ] || grep -qs "/sch_$kind\.ko" "/lib/modules/$(uname -r)/modules.builtin" \
        "/lib/modules/$(uname -r)/modules.dep"; then
        row "qdisc $kind" ok "module sch_$kind found (not tried: no unshare)"
    else
        row "qdisc $kind" fail "no sch_$kind module in /sys/module or /lib/modules/$(uname -r)"
    fi
done
printf '%s\n' "$CHAOSALI_MATCHES" | while read -r match arguments; do
    [ -n "$match" ] || continue
    if [ "$isolated" = yes ]; then
        # shellcheck disable=SC2086 # the match's own arguments
        if out=$(unshare --net iptables -w -A OUTPUT -m "$match" $arguments -j RETURN 2>&1); then
            row "match $match" ok "iptables -m $match"
        else
            row "match $match" fail "iptables -m $match does not work: $out"
        fi
    else
        row "match $match" info "not tried (no unshare)"
    fi
done
# how a delay would hold packets here: netem, else iptables' NFQUEUE and the delayer, which this Python
# (configuration delay_python) runs with the fnfqueue package
for python in $CHAOSALI_DELAY_PYTHON; do
    name="delay via $python"
    if [ "$isolated" != yes ]; then
        row "$name" fail "not tried (no unshare)"
    elif unshare --net tc qdisc add dev lo root netem delay 1ms >/dev/null 2>&1; then
        row "$name" ok "netem (tc qdisc netem)"
    elif ! out=$(unshare --net iptables -w -A OUTPUT -j NFQUEUE --queue-num 1 --queue-bypass 2>&1); then
        row "$name" fail "no sch_netem, and iptables has no NFQUEUE target: $out"
    elif ! out=$("$python" -c 'import fnfqueue' 2>&1); then
        row "$name" fail "no sch_netem, and the NFQUEUE delayer needs $python with the fnfqueue package (pip install fnfqueue, or set configuration delay_python to a Python that has it): $(printf '%s\n' "$out" | tail -n 1)"
    else
        row "$name" ok "nfqueue: no sch_netem here; iptables NFQUEUE and the delayer ($python, fnfqueue)"
    fi
done
if [ "$CHAOSALI_ROUTE" = yes ]; then
    dev=$(ip route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
    if [ -n "$dev" ]; then
        row route ok "default route via $dev"
    else
        row route fail "no default route to find the interface: give the fault an interface"
    fi
fi
for file in $CHAOSALI_FILES; do
    if [ -f "$file" ] && [ -w "$file" ]; then
        row "file $file" ok "$file"
    elif [ -f "$file" ]; then
        row "file $file" fail "$file is not writable"
    else
        row "file $file" fail "$file does not exist"
    fi
done
# the marker root, or where it would be made: a test directory made and removed there
where="$CHAOSALI_MARKER_ROOT"
[ -d "$where" ] || where="${where%/*}"
if out=$(mktemp -d "$where/.chaosali-check.XXXXXX" 2>&1) && rmdir "$out"; then
    row "marker root" ok "$CHAOSALI_MARKER_ROOT writable"
else
    row "marker root" fail "$where is not writable: ${out##*: }"
fi
space="$CHAOSALI_SPACE_PATH"
while [ ! -e "$space" ]; do space="${space%/*}"; space="${space:-/}"; done
row "free space" info "$space $(df -Pk "$space" | awk 'NR == 2 { print $4 }')"
row clock info "$(date +%s.%N)"
