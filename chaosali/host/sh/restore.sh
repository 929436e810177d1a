# Restore faults on this host and print the id of each one restored: the markers CHAOSALI_MARKERS
# lists (directories, or a pattern of them) whose kind begins with CHAOSALI_KIND_PREFIX.
for d in $CHAOSALI_MARKERS; do
    [ -f "$d/restore.sh" ] || continue
    case "$(cat "$d/kind")" in "$CHAOSALI_KIND_PREFIX"*) ;; *) continue ;; esac
    sh "$d/restore.sh"
    if [ ! -d "$d" ]; then
        echo "${d##*/}"
    fi
done
