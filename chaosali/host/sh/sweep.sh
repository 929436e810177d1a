# Remove the iptables chains of faults that no marker accounts for (e.g. /run was lost), jumps first;
# print each chain removed. A fault's chains are named after its id, which begins with CHAOSALI_ID_PREFIX.
for hook in INPUT OUTPUT FORWARD; do
    iptables -w -S "$hook" 2>/dev/null | grep -e "-j $CHAOSALI_ID_PREFIX" | sed 's/^-A/-D/' |
        while read -r rule; do
            # shellcheck disable=SC2086 # the rule is split into iptables' own arguments
            iptables -w $rule
        done
done
iptables -w -S 2>/dev/null | sed -n "s/^-N \\(${CHAOSALI_ID_PREFIX}[^ ]*\\)\$/\\1/p" |
    while read -r chain; do
        iptables -w -F "$chain"
        iptables -w -X "$chain" && echo "$chain"
    done
