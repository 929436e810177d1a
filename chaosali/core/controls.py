"""What chaosali's controls share: they fail closed, and refuse wrong arguments at validation."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

from chaoslib.exceptions import ChaosException, InterruptExecution, InvalidControl
from chaoslib.types import Control

__all__ = ["fail_closed", "check_arguments"]

Hook = TypeVar("Hook", bound=Callable[..., Any])

# what chaoslib passes to a control by itself, never from the control's "arguments"
_INJECTED = {"context", "configuration", "secrets", "experiment", "state", "settings", "extensions"}


def fail_closed(control: str) -> Callable[[Hook], Hook]:
    """Make every failure of a control hook an ``InterruptExecution``.

    chaoslib logs any other exception of a control at debug level only and runs on: a drill
    would then start without its kubeconfig or its lock. A wrong argument name (a TypeError
    when chaoslib calls the hook) is caught here too. ``functools.wraps`` keeps the hook's
    signature visible, which chaoslib reads to pass ``configuration`` and the like.
    """

    def wrap(hook: Hook) -> Hook:
        @functools.wraps(hook)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return hook(*args, **kwargs)
            except InterruptExecution:
                raise
            except ChaosException as error:
                raise InterruptExecution(f"{control} control: {error}; the run stops here") from None
            except Exception as error:
                raise InterruptExecution(
                    f"{control} control failed ({type(error).__name__}: {error}); the run stops here"
                ) from error

        return guarded  # type: ignore[return-value]

    return wrap


def check_arguments(control: Control, hook: Callable[..., Any], required: tuple[str, ...] = ()) -> None:
    """Refuse, at ``chaos validate`` time, a control whose arguments the hook would not take."""
    arguments = (control.get("provider") or {}).get("arguments") or {}
    name = control.get("name")
    if not isinstance(arguments, dict):
        raise InvalidControl(f"control {name!r}: arguments must be an object")
    accepted = [
        p.name
        for p in inspect.signature(hook).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _INJECTED
    ]
    unknown = sorted(set(arguments) - set(accepted))
    missing = [r for r in required if arguments.get(r) in (None, "")]
    if unknown or missing:
        problems = [f"unknown argument(s) {', '.join(unknown)}"] if unknown else []
        problems += [f"missing {', '.join(missing)}"] if missing else []
        raise InvalidControl(f"control {name!r}: {'; '.join(problems)} (it takes: {', '.join(accepted)})")
