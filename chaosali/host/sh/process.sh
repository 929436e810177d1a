# Find the processes a process fault acts on; its values come first (chaosali.host.process): one
# of CHAOSALI_PROCESS (a name), CHAOSALI_PID_FILE or CHAOSALI_UNIT (its main PID), and
# CHAOSALI_ALLOW_CRITICAL. Sets PIDS (space-separated) or exits 2 saying why. PID 1, the processes
# this session runs in (the sshd serving it among them) and any sshd are refused unless allowed:
# killing or stopping them loses the host, or the path that restores it.
fail() { echo "$*" >&2; exit 2; }
PIDS=
if [ -n "$CHAOSALI_PROCESS" ]; then
    # argv[0]'s or the executable's base name, as pgrep -x would match it past comm's 15 characters
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null || true)
        arg0=$(tr '\0' '\n' 2>/dev/null <"$p/cmdline" | head -n 1 || true)
        if [ "${exe##*/}" = "$CHAOSALI_PROCESS" ] || [ "${arg0##*/}" = "$CHAOSALI_PROCESS" ]; then
            PIDS="$PIDS ${p#/proc/}"
        fi
    done
    what="process $CHAOSALI_PROCESS"
elif [ -n "$CHAOSALI_PID_FILE" ]; then
    [ -r "$CHAOSALI_PID_FILE" ] || fail "pid file $CHAOSALI_PID_FILE does not exist on this host"
    PIDS=$(head -n 1 "$CHAOSALI_PID_FILE" | tr -d ' \t')
    what="pid file $CHAOSALI_PID_FILE"
else
    PIDS=$(systemctl show --property MainPID --value "$CHAOSALI_UNIT" 2>/dev/null || true)
    [ "$PIDS" != 0 ] || PIDS=
    what="unit $CHAOSALI_UNIT (its main PID; is it running?)"
fi
case "$PIDS" in *[!0-9\ ]*) fail "$what: '$PIDS' is not a process id" ;; esac
self=" $$ "
p=$$
while [ "$p" -gt 1 ]; do
    p=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null || echo 0)
    self="$self$p "
done
found=
for pid in $PIDS; do
    kill -0 "$pid" 2>/dev/null || continue  # gone since, or a stale pid file
    name=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n 1 || true)
    name=${name##*/}
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    if [ "$CHAOSALI_ALLOW_CRITICAL" != yes ]; then
        [ "$pid" != 1 ] || fail "$what is pid 1 ($name), the host's init: set allow_critical to true to act on it anyway"
        case "$self" in *" $pid "*)
            fail "$what includes process $pid ($name), which runs this SSH session: set allow_critical to true to act on it anyway" ;;
        esac
        [ "${exe##*/}" != sshd ] || fail "$what includes process $pid, an SSH daemon that the restore needs: set allow_critical to true to act on it anyway"
    fi
    found="$found $pid"
done
PIDS=${found# }
[ -n "$PIDS" ] || fail "$what: no such process on this host"
