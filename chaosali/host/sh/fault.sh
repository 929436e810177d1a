# Inject one fault. Its values come first (FaultScript.render), the lines reporting what took
# effect last. The order is the safety model: the marker and its restore.sh, then the dead-man
# timer, and only then the fault (detached, with CHAOSALI_DETACH=yes, when it may cut this session).
set -e
mkdir -p "${d%/*}"
mkdir "$d"
echo "$CHAOSALI_KIND" > "$d/kind"
: > "$d/env"
printf '%s\n' "$CHAOSALI_RESTORE" > "$d/restore.sh"
printf '%s\n' "$CHAOSALI_APPLY" > "$d/apply.sh"
# the dead-man timer: from here on the host heals without us
CHAOSALI_TIMER=1 setsid sh -c 'sleep "$1"; exec sh "$0"' "$d/restore.sh" "$CHAOSALI_DURATION" \
    </dev/null >/dev/null 2>&1 &
echo $! > "$d/timer.pid"
if [ "$CHAOSALI_DETACH" = yes ]; then
    # the pause lets this session return before the fault may cut it
    nohup setsid sh -c 'sleep 1; exec sh "$0"' "$d/apply.sh" </dev/null >/dev/null 2>&1 &
elif ! sh "$d/apply.sh"; then
    cat "$d/apply.err" >&2
    sh "$d/restore.sh" || true  # an undo may fail where the fault never took effect
    exit 3
fi
# shellcheck source=/dev/null # what the fault resolved on the host, for the report
. "$d/env"
