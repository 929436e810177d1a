"""The FMEA block of an experiment: validated, its limits read as impact_within reads them."""

from __future__ import annotations

import json

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.core.errors import InvalidArgument
from chaosali.report.figures import read_run
from chaosali.report.fmea import validate_fmea
from chaosali.report.render import render
from reports import EXPERIMENTS, experiment_with, load


# -- FMEA ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_shipped_experiment_has_a_valid_fmea(path):
    fmea = validate_fmea(json.loads(path.read_text()))
    assert fmea["recovery_seconds"] >= 0 and fmea["detection"]




def test_fmea_errors_name_the_field_and_what_is_allowed():
    assert validate_fmea(experiment_with())["severity"] == "medium"
    with pytest.raises(InvalidArgument, match=r"severity 'hight' is not one of low, medium, high, critical"):
        validate_fmea(experiment_with(severity="hight"))
    with pytest.raises(InvalidArgument, match=r"category 'disk' is not one of host, network, kubernetes, chaos"):
        validate_fmea(experiment_with(category="disk"))
    with pytest.raises(InvalidArgument, match=r"impact .* none, partial, core"):
        validate_fmea(experiment_with(impact="total"))
    with pytest.raises(InvalidArgument, match=r"recovery 'self' is not one of auto, manual"):
        validate_fmea(experiment_with(recovery="self"))
    with pytest.raises(InvalidArgument, match=r"missing field 'detection': the probe or alert"):
        validate_fmea(experiment_with(detection=None))
    with pytest.raises(InvalidArgument, match=r"unknown field 'owner' \(fields: failure_mode, category"):
        validate_fmea(experiment_with(owner="sre"))
    for wrong in (-1, "30", True, None, float("inf"), float("nan"), 1e308, 86401):
        with pytest.raises(InvalidArgument, match=r"recovery_seconds"):
            validate_fmea(experiment_with(recovery_seconds=wrong))
    with pytest.raises(InvalidArgument, match=r"no FMEA; add to extensions"):
        validate_fmea({"title": "t", "extensions": [{"name": "other"}]})
    # every problem at once, and an error a Chaos Toolkit control or activity can raise as is
    with pytest.raises(ActivityFailed) as error:
        validate_fmea(experiment_with(severity="x", impact="y"))
    assert "severity" in str(error.value) and "impact" in str(error.value)


def test_a_journal_with_an_invalid_fmea_is_still_reported():
    journal = load("secret-failure.json")
    journal["experiment"]["extensions"][0]["fmea"]["severity"] = "hight"
    run = read_run(journal)
    assert run.fmea is None and "severity 'hight'" in run.fmea_error
    assert run.recovery.expected is None and run.recovery.exceeded is None
    assert "not usable: FMEA" in render([run], "text")
