"""A sabotaged host action for the drill tests: a CPU load whose command exits at once, so that
everything but the load itself goes as in a real drill (marker, timer, sampler, restore)."""

from chaosali.host import actions, system


def stress_cpu_that_exits(targets: list, duration: float = 60, workers: int = 0, configuration: dict = None,
                          secrets: dict = None) -> dict:
    """stress_cpu, but the load's command is `true`."""
    real = system._load_fault
    system._load_fault = lambda kind, seconds, stress_ng, fallback: real(kind, seconds, "true", "true")
    try:
        return actions.stress_cpu(targets, duration, workers, configuration=configuration, secrets=secrets)
    finally:
        system._load_fault = real
