"""Safety: stop conditions that halt and heal a drill, and the verified revert."""
