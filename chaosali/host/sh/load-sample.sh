# The sampler of a load fault, run by its dead-man timer while the fault lasts (its restore stops
# it): once a second, one line into $d/samples of what the host carried: seconds since the start,
# the host's CPU busy %, its 1-minute load average, its available memory (MB), then the load's own
# process group (its pid is $d/load.pid): CPU % (ps' pcpu, summed), resident memory (MB), processes.
echo $$ > "$d/sample.pid"
cpu() { awk '/^cpu /{printf "%d %d\n", $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
last=$(cpu)
t=0
while [ -d "$d" ]; do
    sleep 1
    t=$((t + 1))
    now=$(cpu)
    busy=$(echo "$last $now" | awk '{s = $3 - $1; printf "%.1f", (s > 0 ? 100 * (s - ($4 - $2)) / s : 0)}')
    last=$now
    group=$(cat "$d/load.pid" 2>/dev/null)
    load=$(ps -e -o pgid=,pcpu=,rss= | awk -v g="${group:-none}" \
        '$1 == g {c += $2; r += $3; n++} END {printf "%.1f %.1f %d", c, r / 1024, n}')
    memory=$(awk '/^MemAvailable:/{printf "%d", $2 / 1024}' /proc/meminfo)
    echo "$t $busy $(cut -d ' ' -f 1 /proc/loadavg) $memory $load" >> "$d/samples"
done
