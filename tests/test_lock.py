"""The environment lock: a Lease in the lab's real apiserver, taken, renewed, refused, expired,
released, and two real ``chaos run`` of which only one may drill at a time."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed, InterruptExecution, InvalidControl
from kubernetes import client as k8s

from chaosali.cluster.api import connect, new_api_client
from chaosali.core import memory
from chaosali.lock import actions, controls, lease, probes
from helpers import wait_until
from test_kubeconfig_fetch import md5, start_chaos


@pytest.fixture
def lock_name(kube_admin) -> str:
    """A Lease of this test's own, deleted afterwards."""
    name = f"test-lock-{uuid.uuid4().hex[:8]}"
    yield name
    controls.cleanup_control()
    with new_api_client(kube_admin) as api:
        try:
            k8s.CoordinationV1Api(api).delete_namespaced_lease(name, lease.DEFAULT_NAMESPACE)
        except k8s.ApiException as error:
            assert error.status == 404


def holder_of(lock_name: str, kube_admin: dict) -> dict:
    return probes.environment_lock_holder(name=lock_name, configuration=kube_admin)


# ---- actions and probe ------------------------------------------------------------------------


def test_lock_then_unlock(lock_name, kube_admin):
    assert holder_of(lock_name, kube_admin)["held"] is False  # no Lease yet: a free lock

    taken = actions.lock_environment(name=lock_name, holder="alice", duration=30, configuration=kube_admin)
    assert taken["held"] is True and taken["holder"] == "alice" and taken["name"] == lock_name
    since, expires = (dt.datetime.fromisoformat(taken[k]) for k in ("since", "expires"))
    assert 29 <= (expires - since).total_seconds() <= 31
    assert holder_of(lock_name, kube_admin) == taken

    unlocked = actions.unlock_environment(name=lock_name, holder="alice", configuration=kube_admin)
    assert unlocked["released"] is True and unlocked["before"]["holder"] == "alice"
    free = holder_of(lock_name, kube_admin)
    assert free["held"] is False and free["holder"] is None and free["transitions"] == 0
    assert actions.unlock_environment(name=lock_name, holder="alice", configuration=kube_admin)["released"] is False


def test_a_second_holder_is_refused_naming_the_first_and_since_when(lock_name, kube_admin):
    taken = actions.lock_environment(name=lock_name, holder="alice", duration=30, configuration=kube_admin)
    with pytest.raises(ActivityFailed, match=re.escape(f"locked by 'alice' since {taken['since']}") + f".*Lease default/{lock_name}"):
        actions.lock_environment(name=lock_name, holder="bob", duration=30, configuration=kube_admin)
    assert holder_of(lock_name, kube_admin)["holder"] == "alice"


def test_unlocking_someone_elses_lock_is_refused_unless_forced(lock_name, kube_admin):
    actions.lock_environment(name=lock_name, holder="alice", duration=30, configuration=kube_admin)
    with pytest.raises(ActivityFailed, match="held by 'alice'.*not by 'bob'.*left as it is.*force"):
        actions.unlock_environment(name=lock_name, holder="bob", configuration=kube_admin)
    assert holder_of(lock_name, kube_admin)["held"] is True

    forced = actions.unlock_environment(name=lock_name, holder="bob", force=True, configuration=kube_admin)
    assert forced["released"] is True and forced["before"]["holder"] == "alice"
    assert holder_of(lock_name, kube_admin)["held"] is False


def test_an_expired_lease_is_taken_over(lock_name, kube_admin):
    actions.lock_environment(name=lock_name, holder="alice", duration=2, configuration=kube_admin)
    assert wait_until(lambda: holder_of(lock_name, kube_admin)["held"] is False, 5) is not None, "the lease never expired"
    assert holder_of(lock_name, kube_admin)["holder"] == "alice", "an expired holder is still named"

    taken = actions.lock_environment(name=lock_name, holder="bob", duration=30, configuration=kube_admin)
    assert taken["holder"] == "bob" and taken["transitions"] == 1
    with pytest.raises(ActivityFailed, match="held by 'bob'"):
        actions.unlock_environment(name=lock_name, holder="alice", configuration=kube_admin)


def test_of_many_contenders_at_once_exactly_one_wins(lock_name, kube_admin):
    """Optimistic concurrency: every write carries the resourceVersion read, one 409s the others."""
    start, results = threading.Barrier(8), {}

    def contend(number: int) -> None:
        with connect(kube_admin) as cluster:
            start.wait()
            try:
                lease.acquire(cluster, lease.Lock("default", lock_name), f"contender-{number}", 30)
                results[number] = "won"
            except lease.Held as error:
                results[number] = error.holding.holder

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, result in results.items() if result == "won"]
    assert len(winners) == 1, results
    assert set(results.values()) == {"won", f"contender-{winners[0]}"}
    assert holder_of(lock_name, kube_admin)["holder"] == f"contender-{winners[0]}"


def test_a_user_without_rights_on_leases_gets_a_clear_refusal(kube, lock_name):
    with pytest.raises(ActivityFailed, match=r"forbidden \(403\).*leases.*RBAC permission"):
        actions.lock_environment(name=lock_name, configuration={"kubeconfig_path": str(kube.readonly_kubeconfig)})


# ---- the control, in this process -------------------------------------------------------------


def test_control_holds_and_renews_for_the_run_then_releases(lock_name, kube_admin):
    controls.before_experiment_control(context={"title": "drill A"}, name=lock_name, duration=3, configuration=kube_admin)
    held = holder_of(lock_name, kube_admin)
    assert held["held"] is True and held["holder"].endswith(f"/{os.getpid()}/drill A")

    time.sleep(4.5)  # longer than the lease: only renewals keep it
    renewed = holder_of(lock_name, kube_admin)
    assert renewed["held"] is True and renewed["since"] == held["since"] and renewed["renewed"] > held["renewed"]
    with pytest.raises(ActivityFailed, match=re.escape(f"locked by '{held['holder']}'")):
        actions.lock_environment(name=lock_name, holder="B", configuration=kube_admin)

    controls.after_experiment_control(context={}, name=lock_name, duration=3)
    assert holder_of(lock_name, kube_admin)["held"] is False


def test_control_refused_the_lock_does_not_release_it_after_the_run(lock_name, kube_admin):
    actions.lock_environment(name=lock_name, holder="alice", duration=30, configuration=kube_admin)
    with pytest.raises(InterruptExecution, match="locked by 'alice'"):
        controls.before_experiment_control(context={"title": "B"}, name=lock_name, configuration=kube_admin)
    controls.after_experiment_control(context={}, name=lock_name)  # chaoslib calls it after an interruption too
    assert holder_of(lock_name, kube_admin)["holder"] == "alice"


def test_control_that_cannot_reach_the_api_refuses_the_run_and_its_journal_says_why(lock_name, kube_admin, tmp_path):
    """As when another drill has cut the masters: no lock, no drill, and the journal says why."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: refused at once
    config = yaml.safe_load(open(os.path.expanduser(kube_admin["kubeconfig_path"])))
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    (tmp_path / "cut.kubeconfig").write_text(yaml.safe_dump(config))
    with pytest.raises(InterruptExecution):
        controls.before_experiment_control(context={"title": "B"}, name=lock_name,
                                           configuration={"kubeconfig_path": str(tmp_path / "cut.kubeconfig")})
    journal: dict = {"status": "interrupted"}
    controls.after_experiment_control(context={}, name=lock_name, state=journal)
    [entry] = journal["extensions"]
    refused = entry["refused"]
    assert (entry["name"], refused["namespace"], refused["name"], refused["holder"]) == (
        "chaosali-lock", lease.DEFAULT_NAMESPACE, lock_name, None)
    assert refused["why"].startswith("could not be taken: ") and str(port) in refused["why"], refused
    assert holder_of(lock_name, kube_admin)["held"] is False  # nothing was taken


def test_control_keeps_a_lock_its_holder_had_before_the_run(lock_name, kube_admin):
    actions.lock_environment(name=lock_name, holder="alice", duration=30, configuration=kube_admin)
    controls.before_experiment_control(context={}, name=lock_name, holder="alice", configuration=kube_admin)
    controls.after_experiment_control(context={}, name=lock_name)
    assert holder_of(lock_name, kube_admin)["holder"] == "alice"


def test_control_arguments_are_checked(lock_name, kube_admin):
    with pytest.raises(InterruptExecution, match=r"duration \(seconds\) 0 must be a whole number from 1 to 86400"):
        controls.before_experiment_control(context={}, name=lock_name, duration=0, configuration=kube_admin)
    with pytest.raises(InvalidControl, match="unknown argument.*durration"):
        controls.validate_control({"name": "lock", "provider": {"arguments": {"durration": 5}}})


class _Forwarder:
    """A TCP forwarder on 127.0.0.1 to the API server, which ``cut`` stops (every connection
    dropped, new ones closed at once) and ``heal`` lets through again: a run that loses the API
    while others still reach it (the API server's certificate names 127.0.0.1)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.through = target, True
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            if not self.through:
                near.close()
                continue
            far = socket.create_connection(self.target)
            self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        _Forwarder._drop([source, sink])

    @staticmethod
    def _drop(sockets: list[socket.socket]) -> None:
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.through = False
        self._drop(self._sockets)

    def heal(self) -> None:
        self.through = True

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_run_that_lost_the_api_while_another_took_and_released_the_lock_is_stopped(kube, lock_name, kube_admin, tmp_path):
    """A holds the lock and loses the API; B takes the lock (A's lease expired) and releases it;
    A's access comes back. A's renewer used to take the lock again (leaseTransitions 0 -> 2) and
    the run went on; any change of hands since the last renewal now stops it."""
    document = yaml.safe_load(kube.admin_kubeconfig.read_text())
    server = urlsplit(document["clusters"][0]["cluster"]["server"])
    forwarder = _Forwarder((server.hostname, server.port))
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{forwarder.port}"
    (tmp_path / "a.kubeconfig").write_text(yaml.safe_dump(document))
    stops = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: stops.append(time.monotonic()))  # as `chaos run` does
    try:
        a_config = {"kubeconfig_path": str(tmp_path / "a.kubeconfig")}
        controls.before_experiment_control(context={"title": "A"}, name=lock_name, duration=3, configuration=a_config)
        renewer = memory.section(controls._MEMORY)[lease.Lock("default", lock_name)].renewer
        assert holder_of(lock_name, kube_admin)["transitions"] == 0
        forwarder.cut()
        assert wait_until(lambda: not holder_of(lock_name, kube_admin)["held"], 10) is not None, "A's lease never expired"
        with connect(kube_admin, timeout=5) as cluster:  # B, which reaches the API
            where = lease.Lock("default", lock_name)
            assert lease.acquire(cluster, where, "B", 30)[0].holder == "B"
            assert lease.release(cluster, where, "B", False)[1]
        assert renewer.lost is None and not stops
        forwarder.heal()
        assert wait_until(lambda: renewer.lost is not None, 10) is not None, "A's run went on"
        assert isinstance(renewer.lost, lease.Lost) and "changed hands" in str(renewer.lost)
        assert wait_until(lambda: stops, 2) is not None, "A's run was not asked to stop"
        after = holder_of(lock_name, kube_admin)
        assert after["holder"] is None and after["transitions"] == 1, "A took the lock again"
    finally:
        signal.signal(signal.SIGUSR1, previous)
        forwarder.close()


# ---- real chaos runs --------------------------------------------------------------------------


def lock_experiment(title: str, lock_name: str, kube_admin: dict, duration: int, sleep: float) -> dict:
    return {
        "title": title,
        "description": "A drill that must have the environment to itself.",
        "configuration": kube_admin,
        "controls": [{"name": "lock", "provider": {
            "type": "python", "module": "chaosali.lock.controls",
            "arguments": {"name": lock_name, "duration": duration}}}],
        "method": [{"type": "action", "name": "drill", "provider": {
            "type": "process", "path": "sleep", "arguments": str(sleep)}}],
        "rollbacks": [{"type": "action", "name": "heal", "provider": {"type": "process", "path": "true"}}],
    }


def test_of_two_runs_started_together_one_drills_and_the_other_is_interrupted(lock_name, kube_admin, tmp_path):
    runs = {title: start_chaos(tmp_path / title, lock_experiment(title, lock_name, kube_admin, duration=3, sleep=6))
            for title in ("drill-A", "drill-B")}
    assert wait_until(lambda: holder_of(lock_name, kube_admin)["held"], 30) is not None, "neither run took the lock"
    first = holder_of(lock_name, kube_admin)
    seen = [first]
    while any(run.process.poll() is None for run in runs.values()):  # a 3 s lease held for 6 s: renewals
        seen.append(holder_of(lock_name, kube_admin))
        time.sleep(0.3)
    journals = {title: run.finish() for title, run in runs.items()}

    statuses = sorted(journal["status"] for journal in journals.values())
    assert statuses == ["completed", "interrupted"], {t: r.output[-2000:] for t, r in runs.items()}
    winner = next(t for t, j in journals.items() if j["status"] == "completed")
    loser = next(t for t in runs if t != winner)
    assert first["holder"].endswith(f"/{winner}")
    assert [a["status"] for a in journals[winner]["run"]] == ["succeeded"]
    assert journals[loser]["run"] == [] and journals[loser]["rollbacks"] == []
    assert f"locked by '{first['holder']}'" in runs[loser].log

    while_drilling = [h for h in seen if h["holder"]]
    assert all(h["held"] and h["holder"] == first["holder"] for h in while_drilling), "the lease lapsed during the drill"
    assert len({h["renewed"] for h in while_drilling}) >= 3, "the lease was not renewed"
    assert holder_of(lock_name, kube_admin)["held"] is False, "the winner did not release the lock"


def test_sigkill_of_the_holders_run_frees_the_lock_after_its_lease_duration(lock_name, kube_admin, tmp_path):
    holder = start_chaos(tmp_path / "killed", lock_experiment("killed", lock_name, kube_admin, duration=4, sleep=120),
                         start_new_session=True)
    assert wait_until(lambda: holder_of(lock_name, kube_admin)["held"], 30) is not None, "the run never took the lock"
    taken = holder_of(lock_name, kube_admin)
    time.sleep(1)  # into the drill: the method's sleep runs
    os.killpg(holder.process.pid, signal.SIGKILL)
    holder.process.wait()
    killed_at = time.monotonic()

    with pytest.raises(ActivityFailed, match="locked by"):  # still held: a dead holder is seen only by expiry
        actions.lock_environment(name=lock_name, holder="impatient", configuration=kube_admin)
    assert wait_until(lambda: not holder_of(lock_name, kube_admin)["held"], 10) is not None, "the lock was never freed"
    assert time.monotonic() - killed_at <= 4 + 1, "the lock outlived its lease duration"

    third = start_chaos(tmp_path / "third", lock_experiment("third", lock_name, kube_admin, duration=4, sleep=0.1))
    journal = third.finish()
    assert journal["status"] == "completed", third.output
    assert holder_of(lock_name, kube_admin)["transitions"] == taken["transitions"] + 1


def test_a_run_whose_lock_is_taken_over_is_stopped_and_rolled_back(lock_name, kube_admin, tmp_path):
    run = start_chaos(tmp_path / "overtaken", lock_experiment("overtaken", lock_name, kube_admin, duration=3, sleep=60))
    assert wait_until(lambda: holder_of(lock_name, kube_admin)["held"], 30) is not None, "the run never took the lock"
    time.sleep(0.5)
    with connect(kube_admin, timeout=5) as cluster:  # as a careless operator would: force it free and take it
        where = lease.Lock("default", lock_name)
        lease.release(cluster, where, "intruder", True)
        lease.acquire(cluster, where, "intruder", 30)

    journal = run.finish(timeout=30)
    assert journal["status"] == "interrupted", run.output
    assert journal["duration"] < 30, "the drill went on after losing the lock"
    assert "lost the environment lock" in run.log
    assert holder_of(lock_name, kube_admin)["holder"] == "intruder", "the run released a lock no longer its own"


def test_with_a_fetched_kubeconfig_the_lock_is_taken_and_released_in_the_fetched_cluster(kube, http, lock_name,
                                                                                         kube_admin, tmp_path):
    """As a drill declares them: the kubeconfig control first, then the lock. The kubeconfig's
    after-control removes the file before the lock's after-control releases the Lease."""
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/lock.kubeconfig", body)
    experiment = lock_experiment("fetched", lock_name, {}, duration=3, sleep=0.1)
    del experiment["configuration"]  # no kubeconfig but the fetched one
    experiment["controls"].insert(0, {"name": "kubeconfig", "provider": {
        "type": "python", "module": "chaosali.cluster.controls", "arguments": {"url": url, "md5": md5(body)}}})
    run = start_chaos(tmp_path, experiment)
    journal = run.finish()

    assert journal["status"] == "completed", run.output
    assert f"Lease default/{lock_name} released" in run.log
    after = holder_of(lock_name, kube_admin)
    assert after["held"] is False and after["holder"] is None
