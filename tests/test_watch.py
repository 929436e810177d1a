"""The watch loop's bookkeeping, on a scripted condition (pure logic)."""

import pytest

from chaosali.cluster.watch import watch
from chaosali.core.errors import InvalidArgument


def scripted(*states: bool):
    values = iter(states)
    return lambda: next(values)


def test_down_then_back_is_timed_and_stops_when_back():
    result = watch(scripted(True, False, False, True, True), seconds=5, interval=0.01, stop="back")
    assert result["samples"] == 4
    assert [c["up"] for c in result["changes"]] == [True, False, True]
    assert result["first"] is True and result["last"] is True
    assert result["down_at"] and result["back_at"] and 0.015 <= result["down_seconds"] < 1


def test_stop_when_down_and_a_condition_never_down():
    assert watch(scripted(True, True, False, True), seconds=5, interval=0.01, stop="down")["samples"] == 3
    steady = watch(lambda: True, seconds=0.05, interval=0.01)
    assert steady["down_at"] is None and steady["down_seconds"] == 0 and steady["last"] is True


def test_stop_when_up_ends_at_once_when_it_is_and_else_once_it_is_back():
    assert watch(lambda: True, seconds=5, interval=1, stop="up")["samples"] == 1
    result = watch(scripted(False, False, True, True), seconds=5, interval=0.01, stop="up")
    assert result["samples"] == 3 and result["first"] is False and result["last"] is True and result["back_at"]


def test_still_down_at_the_end_counts_until_the_end():
    result = watch(scripted(*([False] * 100)), seconds=0.05, interval=0.01)
    assert result["back_at"] is None and result["last"] is False and result["down_seconds"] >= 0.05


@pytest.mark.parametrize("seconds, interval, stop, complaint", [
    (5, 0, "never", r"interval \(seconds\) 0 must be a number above 0 and at most 5"),
    (1, 2, "never", r"interval \(seconds\) 2 must be a number above 0 and at most 1"),
    (3601, 1, "never", r"seconds 3601 must be a number above 0 and at most 3600"),
    (float("nan"), 1, "never", r"seconds nan must be a number"),
    (5, 1, "sometimes", r"stop 'sometimes' must be one of never, down, back, up"),
])
def test_bad_arguments(seconds, interval, stop, complaint):
    with pytest.raises(InvalidArgument, match=complaint):
        watch(lambda: True, seconds, interval, stop)
