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
[ -z "$CHAOSALI_SAMPLE" ] || printf '%s\n' "$CHAOSALI_SAMPLE" > "$d/sample.sh"
[ -z "$CHAOSALI_PROGRAM" ] || printf '%s\n' "$CHAOSALI_PROGRAM_TEXT" > "$d/$CHAOSALI_PROGRAM"
# faults that start together take effect at the controller's instant, CHAOSALI_AT (epoch seconds;
# empty: at once; apply.sh waits for it): the timer counts the wait, so the fault lasts its duration
lasts=$CHAOSALI_DURATION
if [ -n "$CHAOSALI_AT" ]; then
    lasts=$(date +%s.%N | awk -v at="$CHAOSALI_AT" -v t="$CHAOSALI_DURATION" '{ w = at - $1; print (w > 0 ? w : 0) + t }')
fi
# the dead-man timer: from here on the host heals without us; while it waits, it runs the fault's
# sampler (the evidence of a load), in its process group so that a restore stops both
CHAOSALI_TIMER=1 setsid sh -c '[ ! -f "$2" ] || sh "$2" & sleep "$1"; exec sh "$0"' \
    "$d/restore.sh" "$lasts" "$d/sample.sh" </dev/null >/dev/null 2>&1 &
echo $! > "$d/timer.pid"
if [ "$CHAOSALI_DETACH" = yes ]; then
    # the pause lets this session return before the fault may cut it
    nohup setsid sh -c 'sleep 1; exec sh "$0"' "$d/apply.sh" </dev/null >/dev/null 2>&1 &
elif ! sh "$d/apply.sh"; then
    cat "$d/apply.err" >&2
    sh "$d/restore.sh" || true  # an undo may fail where the fault never took effect
    exit 3
fi
# the instant the fault took effect here, for the skew of faults that start together
[ -z "$CHAOSALI_AT" ] || [ "$CHAOSALI_DETACH" = yes ] || echo "chaosali-effective-at $(date +%s.%N)"
# shellcheck source=/dev/null # what the fault resolved on the host, for the report
. "$d/env"
