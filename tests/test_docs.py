"""The generated documentation is the documentation: a test fails when docs/ is out of date."""

from chaosali import docs
from helpers import REPO


def test_activity_reference_is_up_to_date():
    assert (REPO / "docs" / "reference.md").read_text() == docs.reference(), (
        "docs/reference.md is out of date: run python -m chaosali.docs"
    )


def test_fmea_catalogue_is_up_to_date():
    assert (REPO / "docs" / "fmea.md").read_text() == docs.fmea_catalogue(REPO / "experiments"), (
        "docs/fmea.md is out of date: run python -m chaosali.docs"
    )


def test_reference_lists_every_discovered_activity():
    text = docs.reference()
    for name in ("cut_network", "reconfigure_kubelet", "apply", "get", "watch_api", "service_available"):
        assert f"### `{name}` (" in text
