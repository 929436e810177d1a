# Restore faults on this host and print the id of each one restored: the markers CHAOSALI_MARKERS
# lists (directories, or a pattern of them) whose kind begins with CHAOSALI_KIND_PREFIX; then the
# samples a fault's sampler kept (a load's evidence), each line after the fault's id and kind.
for d in $CHAOSALI_MARKERS; do
    [ -f "$d/kind" ] || continue
    case "$(cat "$d/kind")" in "$CHAOSALI_KIND_PREFIX"*) ;; *) continue ;; esac
    if [ -f "$d/restore.sh" ]; then
        sh "$d/restore.sh"
        [ -f "$d/restore.sh" ] || echo "${d##*/}"
    fi
    if [ -f "$d/samples" ]; then
        sed "s/^/${d##*/} $(cat "$d/kind") /" "$d/samples"
        rm -rf "$d"
    fi
done
