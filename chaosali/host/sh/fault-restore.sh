# One fault's restore.sh, in its marker directory $d, run by its dead-man timer (CHAOSALI_TIMER
# set), a rollback or cleanup: the fault's undo commands follow. Each may fail (the fault never
# took effect, or is restored already), so restoring twice is harmless.
[ -d "$d" ] || exit 0
# what a fault's sampler recorded outlives the fault until a restore prints it (restore.sh)
trap 'find "$d" -mindepth 1 -maxdepth 1 ! -name kind ! -name samples -exec rm -rf {} +
[ -s "$d/samples" ] || rm -rf "$d"' EXIT
# shellcheck source=/dev/null # what the fault resolved on the host (apply.sh adds to it)
. "$d/env"
# the timer runs this script too: killing its own process group would stop the restore
if [ -z "$CHAOSALI_TIMER" ] && [ -f "$d/timer.pid" ]; then
    kill -TERM "-$(cat "$d/timer.pid")" 2>/dev/null
fi
exec 2>/dev/null
[ ! -f "$d/sample.pid" ] || kill "$(cat "$d/sample.pid")"
