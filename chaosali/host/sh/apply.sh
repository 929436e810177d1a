# One fault's apply.sh, in its marker directory $d: the fault's commands follow. The first that
# fails stops it; its error, kept in apply.err, is what the injection reports.
set -e
exec 2>"$d/apply.err"
