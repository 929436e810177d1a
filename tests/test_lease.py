"""The lock's lease logic without a cluster, as the measures have it: what a Lease says, when it
expires, who may take it, and the Lease written to take or renew it (tests/test_lock.py runs it
against the lab's API server)."""

from __future__ import annotations

import datetime as dt

import pytest

from chaosali.core.errors import InvalidArgument
from chaosali.lock import lease

LOCK = lease.Lock("default", "chaosali-drill-lock")
T0 = dt.datetime(2026, 1, 1, 10, 0, 0, tzinfo=dt.timezone.utc)


def held(holder: str | None, renewed: dt.datetime | None = T0, duration: int | None = 30, transitions: int = 0,
         acquired: dt.datetime | None = T0) -> lease.Holding:
    spec = {"holderIdentity": holder, "leaseDurationSeconds": duration, "leaseTransitions": transitions,
            "acquireTime": acquired and acquired.isoformat(), "renewTime": renewed and renewed.isoformat()}
    return lease.Holding.of({"metadata": {"name": LOCK.name, "namespace": LOCK.namespace, "resourceVersion": "7"},
                             "spec": {key: value for key, value in spec.items() if value is not None}})


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_lease_is_live_until_its_last_renewal_plus_its_duration():
    holding = held("A", renewed=at(10))
    assert holding.expires == at(40)
    assert holding.live(at(39.9)) and not holding.live(at(40))
    assert not held(None).live(at(1)), "nobody holds a lease without a holder"


@pytest.mark.parametrize("holding", [held("A", renewed=None, acquired=None), held("A", duration=None),
                                     lease.Holding.of({"spec": {"holderIdentity": "A", "renewTime": "yesterday",
                                                                "leaseDurationSeconds": 30}})])
def test_a_holder_without_readable_times_or_duration_has_expired(holding):
    assert holding.expires is None and not holding.live(at(0))


def test_the_journal_shows_the_holder_and_its_times_not_the_lease():
    shown = held("A", renewed=at(10)).as_dict(LOCK)
    assert shown | {"held": None} == {"held": None, "holder": "A", "since": "2026-01-01T10:00:00+00:00",
                                      "renewed": "2026-01-01T10:00:10+00:00", "expires": "2026-01-01T10:00:40+00:00",
                                      "transitions": 0, "namespace": "default", "name": "chaosali-drill-lock"}


def test_a_free_lock_is_created_with_chaosali_s_label_and_no_transition():
    body, already = lease.claim(LOCK, lease.Holding.of(None), "A", 30, T0)
    assert already is False
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "chaosali"}
    assert body["spec"] == {"holderIdentity": "A", "leaseDurationSeconds": 30, "acquireTime": "2026-01-01T10:00:00.000000Z",
                            "renewTime": "2026-01-01T10:00:00.000000Z", "leaseTransitions": 0}


def test_a_live_lease_of_another_holder_is_refused_naming_it():
    with pytest.raises(lease.Held, match=r"locked by 'B' since 2026-01-01T10:00:00\+00:00, free at "):
        lease.claim(LOCK, held("B"), "A", 30, at(29))


def test_an_expired_lease_is_taken_over_and_counts_a_transition():
    body, already = lease.claim(LOCK, held("B", transitions=2), "A", 30, at(31))
    assert already is False
    assert body["spec"]["holderIdentity"] == "A" and body["spec"]["leaseTransitions"] == 3
    assert body["spec"]["acquireTime"] == body["spec"]["renewTime"] == "2026-01-01T10:00:31.000000Z"
    assert body["metadata"]["resourceVersion"] == "7", "the update must be conditional on the Lease read"


def test_a_renewal_keeps_the_acquire_time_and_the_transitions():
    before = held("A", transitions=4)
    body, already = lease.claim(LOCK, before, "A", 30, at(10), renewing=before)
    assert already is True
    assert body["spec"]["acquireTime"] == "2026-01-01T10:00:00.000000Z"
    assert body["spec"]["renewTime"] == "2026-01-01T10:00:10.000000Z" and body["spec"]["leaseTransitions"] == 4


def test_a_renewal_after_the_lease_changed_hands_is_lost_even_if_it_is_free_again():
    mine = held("A", transitions=1)
    for now in (held("B", transitions=2), held(None, transitions=3), held("A", transitions=3)):
        with pytest.raises(lease.Lost, match="changed hands"):
            lease.claim(LOCK, now, "A", 30, at(5), renewing=mine)


def test_identity_and_lock_arguments_are_checked():
    assert lease.identity_of("ci-job-7") == "ci-job-7"
    assert lease.identity_of(title="etcd drill").endswith("/etcd drill")
    with pytest.raises(InvalidArgument, match="holder must be a non-empty string"):
        lease.identity_of("  ")
    with pytest.raises(InvalidArgument, match="the lock's namespace must be a non-empty string"):
        lease.Lock.of("lock", "")


def test_a_request_never_outlasts_a_renewal_interval():
    assert lease.request_timeout({"kubernetes_request_timeout": 60}, 30) == 10
    assert lease.request_timeout({"kubernetes_request_timeout": 5}, 30) == 5
    assert lease.request_timeout({}, 2) == 1.0
