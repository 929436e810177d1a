"""Fixtures: a hosts lab of its own for the test session (name and range apart from the demo's).

A test that uses a lab (any fixture built on ``one_test_session_at_a_time``) is marked ``lab``:
``pytest -m "not lab"`` runs the unit tests alone, in seconds, without root and without the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import DEFAULT_STATE_DIR, Lab
from helpers import SEQUENCE, Drill, KubeAccess, chaosali_chains, markers, run_in_order, sh
from webserver import LocalServer

# the session's runs keep their ledgers apart from the user's (``chaos run`` children inherit it)
os.environ["CHAOSALI_STATE_DIR"] = tempfile.mkdtemp(prefix="chaosali-test-state-")
TEST_LAB = {"name": "cstest", "subnet": "10.214.0.0/24"}
KUBE_LAB = {"name": "cskube", "subnet": "10.217.0.0/24"}
MONITORED_LAB = {"name": "csmon", "subnet": "10.242.0.0/24"}
HA_LAB = {"name": "csha", "subnet": "10.218.0.0/24"}


#: The labs tests share, by the fixture that brings each up. A lab test that uses none of them
#: brings up labs of its own ("own": names and ranges no other test uses).
_SHARED_LABS = ("ha_cluster", "kube", "lab", "monitored")
#: Set by a pytest-xdist controller that holds the labs' locks for its workers: its pid.
_LOCKS_HELD = "CHAOSALI_TESTS_LOCKS_HELD_BY"


def _labs_of(item: pytest.Item) -> list[str]:
    # fixturenames is the transitive closure: lab, lab_vars, chaos_args, kube and all built on them
    return [name for name in _SHARED_LABS if name in item.fixturenames] or ["own"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under pytest-xdist (scripts/test: -n ... --dist loadgroup) a session's lab lives in one worker, so
    # every test of a lab goes to that lab's worker, in this order: the cluster lab's tests to one, the
    # monitored lab's (its drills run twice in sequence, about 16 min) to another, the host, highly
    # available and own labs' to a third (a test that uses two labs must find both in its group:
    # tests/test_suite_rules.py checks it); the unit tests run beside them.
    for item in items:
        if "one_test_session_at_a_time" in item.fixturenames:
            item.add_marker(pytest.mark.lab)
        if item.get_closest_marker("lab"):
            labs = _labs_of(item)
            group = "cluster" if "kube" in labs else "monitored" if "monitored" in labs else "other-labs"
            item.add_marker(pytest.mark.xdist_group(group))


def _lock_labs(config: pytest.Config, labs: set[str]) -> None:
    """Hold the locks of ``labs`` to the run's end, taken in one order (so that two sessions never
    wait for each other in a circle): a session waits only for the sessions that use one of its labs. The
    sessions' lock is shared: a checkout from before the labs had locks of their own takes it alone."""
    if not labs:
        return
    DEFAULT_STATE_DIR.mkdir(parents=True, exist_ok=True)
    for name, mode in [(".tests.lock", fcntl.LOCK_SH), *((f".tests-{lab}.lock", fcntl.LOCK_EX) for lab in sorted(labs))]:
        lock = open(DEFAULT_STATE_DIR / name, "w")
        fcntl.flock(lock, mode)
        config.add_cleanup(lock.close)


def pytest_configure(config: pytest.Config) -> None:
    """A pytest-xdist controller that may run lab tests takes every lab's lock for its workers
    before it starts them (it does not collect: it cannot tell which labs its tests use)."""
    distributed = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if distributed and "not lab" not in (config.option.markexpr or ""):
        _lock_labs(config, {*_SHARED_LABS, "own"})
        os.environ[_LOCKS_HELD] = str(os.getpid())


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session takes the locks of the labs its selected tests use, before its first test."""
    grouped = getattr(session.config.option, "loadgroup", False)  # set in pytest-xdist's workers
    ungrouped = [item.nodeid for item in session.items
                 if grouped and item.get_closest_marker("lab") and "@" not in item.nodeid]
    if ungrouped:  # each would go to any worker, and two workers would bring up one lab at once
        raise pytest.UsageError(f"pytest-xdist did not group the lab tests ({ungrouped[0]}, ...): pytest 9.2 breaks "
                                "--dist loadgroup (pytest-xdist issue 1386); pip install 'pytest<9.2'")
    if session.config.option.collectonly or os.environ.get(_LOCKS_HELD) in (str(os.getpid()), str(os.getppid())):
        return  # nothing runs; or a pytest-xdist controller took them, for its workers too
    _lock_labs(session.config, {lab for item in session.items if item.get_closest_marker("lab")
                                for lab in _labs_of(item)})


@pytest.fixture(scope="session")
def one_test_session_at_a_time() -> None:
    """What every fixture that brings up a lab depends on: it makes the tests that use it ``lab``
    tests, whose labs' locks the session takes once it has collected them (pytest_collection_finish)."""


@pytest.fixture(scope="session")
def lab(one_test_session_at_a_time: None) -> Iterator[Lab]:
    lab = Lab(**TEST_LAB)
    lab.down()  # a previous session killed mid-run may have left it behind
    lab.up(hosts=3)
    yield lab
    lab.down()


@pytest.fixture(scope="session")
def lab_vars(lab: Lab) -> dict:
    return json.loads(lab.vars_path.read_text())


@pytest.fixture
def chaos_args(lab_vars: dict) -> dict:
    """The ``configuration`` and ``secrets`` keywords an activity receives in the lab."""
    return {"configuration": dict(lab_vars["configuration"]), "secrets": dict(lab_vars["secrets"]["ssh"])}


@pytest.fixture(autouse=True)
def fresh_run_memory(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with an empty run memory: the faults one test's in-process activities
    remembered must not be another's to heal or to count. A lab test's own faults are proven gone
    at its end by the verified revert, as a run's are (on every lab, the shared ones included)."""
    from chaosali.core import ledger, memory
    from chaosali.safety import revert

    memory.forget()
    yield
    try:
        if "one_test_session_at_a_time" in request.fixturenames:
            left = revert.verify()["left_behind"]
            assert left == revert.NOTHING, f"the test left faults behind: {left}"
            ledger.close_all()  # as a run's verified revert does: its ledger then holds nothing open
    finally:
        memory.forget()


@pytest.fixture(autouse=True)
def lock_free_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test on a cluster lab leaves its environment lock free: a drill a test killed holds it
    until its lease runs out, which would refuse the next test's drills."""
    yield
    for name in ("kube", "monitored"):
        if name in request.fixturenames:
            from chaosali.lock.actions import unlock_environment

            access = request.getfixturevalue(name)
            kubeconfig = access.admin if name == "kube" else {"kubeconfig_path": str(access.admin_kubeconfig)}
            unlock_environment(force=True, configuration=kubeconfig)


@pytest.fixture(autouse=True)
def no_fault_left(request: pytest.FixtureRequest) -> None:
    """Every lab test must leave its hosts clean: no marker, no chaosali chain."""
    yield
    if "lab" not in request.fixturenames:
        return
    lab: Lab = request.getfixturevalue("lab")
    for host in lab.hosts:
        assert markers(lab, host) == [], f"{host.name} still has fault markers"
        assert chaosali_chains(host) == [], f"{host.name} still has chaosali chains"


@pytest.fixture(scope="session")
def kube(one_test_session_at_a_time: None) -> Iterator[KubeAccess]:
    """A real kube-apiserver: the lab cluster (one master, two workers), brought up once.

    CHAOSALI_TEST_KUBECONFIG (and _READONLY) point the cluster tests at another real cluster."""
    if os.environ.get("CHAOSALI_TEST_KUBECONFIG"):
        admin = Path(os.environ["CHAOSALI_TEST_KUBECONFIG"])
        yield KubeAccess(admin, Path(os.environ.get("CHAOSALI_TEST_KUBECONFIG_READONLY", admin)))
        return
    lab = Lab(**KUBE_LAB)
    lab.down()
    said: list[str] = []
    # real workers where this machine can run containers (CHAOSALI_TEST_NODES=kwok: kwok ones)
    cluster = Cluster(lab, progress=said.append, nodes=os.environ.get("CHAOSALI_TEST_NODES"))
    cluster.up(masters=1, workers=2)
    access = KubeAccess(cluster.admin_kubeconfig, cluster.readonly_kubeconfig, lab)
    access.kwok_because = next((line for line in said if line.startswith("kwok workers:")),
                               None if cluster.node_kind == "real" else "kwok workers: CHAOSALI_TEST_NODES=kwok")
    yield access
    lab.down()


@pytest.fixture
def web_spread(kube: KubeAccess) -> None:
    """The demo workload with one replica per worker, for a test that acts on it without a drill (a
    drill's own ``spread`` control does this): put back as the drills put it back."""
    from chaosali.cluster.api import connect
    from chaosali.cluster.spread import respread

    with connect(kube.admin) as cluster:
        respread(cluster, "demo", "web", 120)


@pytest.fixture
def kube_admin(kube: KubeAccess) -> dict:
    """The configuration of activities that act as the lab cluster's admin (a fresh dict per test)."""
    return kube.admin


@pytest.fixture
def kube_chaos(kube: KubeAccess) -> dict:
    """The ``configuration`` and ``secrets`` keywords of host activities on the cluster lab's hosts."""
    if kube.lab is None:
        pytest.skip("needs the lab cluster's hosts over SSH, not only a kubeconfig (CHAOSALI_TEST_KUBECONFIG)")
    variables = json.loads(kube.lab.vars_path.read_text())
    return {"configuration": {**variables["configuration"], **kube.admin}, "secrets": dict(variables["secrets"]["ssh"])}


@pytest.fixture(scope="module")
def http() -> Iterator[LocalServer]:
    """An HTTP server on 127.0.0.1 for the module's tests (tests/webserver.py)."""
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def real_containers(kube: KubeAccess) -> None:
    """Skip a test that needs real containers when the shared lab's workers are kwok, saying why."""
    if kube.lab is None or kube.kwok_because:
        pytest.skip(kube.kwok_because or "real containers: the cluster under test is not the lab's")


@pytest.fixture(scope="session")
def ha_cluster(one_test_session_at_a_time: None) -> Iterator[Cluster]:
    """The highly available lab: 3 masters (etcd members, API servers) behind a load balancer, kwok
    workers (its drills measure the control plane); beside the host lab's tests, the API they record."""
    cluster = Cluster(Lab(**HA_LAB), nodes="kwok")
    cluster.lab.down()
    cluster.up(masters=3, workers=2)
    yield cluster
    cluster.lab.down()


@pytest.fixture(scope="session")
def monitored(one_test_session_at_a_time: None) -> Iterator[Cluster]:
    """A lab cluster with its monitoring (Prometheus, Alertmanager, node exporters), brought up once:
    two workers in two zones, so that the drills of one worker or one zone run here, judged by their alerts."""
    lab = Lab(**MONITORED_LAB)
    lab.down()
    cluster = Cluster(lab)
    cluster.up(masters=1, workers=2, monitored=True)
    yield cluster
    lab.down()


@pytest.fixture(scope="session")
def forward(monitored: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Drill]:
    """Every shipped drill the monitored lab runs, once, one after another in file order, as a user
    runs them (helpers.SEQUENCE): the drill tests read their journals."""
    return run_in_order(monitored.lab, tmp_path_factory.mktemp("forward"), list(SEQUENCE))


@pytest.fixture(scope="session")
def reverse(forward: dict[str, Drill], monitored: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Drill]:
    """The same drills on the same lab after ``forward``, in the reverse order: each then finds the lab
    as the drill after it in file order left it."""
    return run_in_order(monitored.lab, tmp_path_factory.mktemp("reverse"), list(reversed(SEQUENCE)))


@pytest.fixture
def no_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test that reaches a host: its arguments must be refused before any SSH session."""
    from chaosali.host import faults

    def refuse(*_: object) -> str:
        raise AssertionError("a host was reached before the arguments were checked")

    monkeypatch.setattr(faults, "run_script", refuse)


@pytest.fixture
def marker_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Faults rendered by the test run here with markers of their own; no timer outlives the test."""
    from chaosali.host import faults

    monkeypatch.setattr(faults, "MARKER_ROOT", str(tmp_path / "markers"))
    yield tmp_path / "markers"
    sh(faults.restore_script_for(None, ""))
