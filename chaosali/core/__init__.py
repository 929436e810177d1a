"""The small neutral core every chaosali domain may use: the argument vocabulary, errors, marker
names and labels, the parallel fan-out and the run memory. It imports no domain."""
