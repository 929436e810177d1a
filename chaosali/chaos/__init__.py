"""Random fault combinations: chaos drills that pick host faults from a pool with a seed, under
a cap on their blast radius, and undo exactly what they injected."""
