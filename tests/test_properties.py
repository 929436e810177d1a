"""Property-based proof (hypothesis) for every argument that reaches a shell, tc, iptables, a file
path on a host or an HTTP header: any generated value is refused with InvalidArgument before any
connection, or it appears in the generated script only quoted (or made only of characters that
need no quoting) and the script passes ``sh -n``. And for the number reader: nothing gets past it
as NaN, infinity, a boolean or out of range. Unit tests: no lab, no connection at all."""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from requests.utils import check_header_validity

from chaosali.core import args, markers
from chaosali.core.errors import InvalidArgument
from chaosali.host import faults, network, system
from chaosali.host.ssh import parse_hosts
from chaosali.report.figures import read_run
from chaosali.report.render import FORMATS, render

DATA = Path(__file__).resolve().parent / "data"
# no example database: the repository stays clean, and a failure prints its falsifying example
FAST = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# what a hostile user would try: shell syntax, options, line breaks, other digits, braces
HOSTILE = list("$`;&|<>(){}[]*?!~#'\"\\ \t\n\r\x00\x1b-=/.:@,%+^") + ["$(id)", "١", "٣", "ｍ", "é", "--help", "\u2028"]
_SAFE = re.compile(r"[A-Za-z0-9@%+=:,./_-]*")  # what shlex.quote leaves bare


def hostile(*valid: str) -> st.SearchStrategy[str]:
    """Text that is sometimes valid (``valid`` patterns), often nearly so, often hostile."""
    pieces = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=4),
                                *(st.from_regex(p, fullmatch=True) for p in valid)), max_size=5)
    return st.one_of(st.text(max_size=12), pieces.map("".join),
                     *(st.from_regex(p, fullmatch=True) for p in valid))


ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=8))


def sh_n(script: str) -> None:
    check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def assert_quoted(value: str, script: str) -> None:
    """``value`` appears in the script only as the quoting makes it, or needs none."""
    if _SAFE.fullmatch(value):
        return
    assert shlex.quote(value) in script


def build_or_refuse(build, *values: str) -> str | None:
    """The fault's rendered script (checked), or None when the values were refused."""
    try:
        fault = build()
    except InvalidArgument:
        return None
    script = fault.render()
    sh_n(script)
    sh_n(fault.apply_script())
    sh_n(fault.restore_script())
    for value in values:
        if isinstance(value, str):
            assert_quoted(value, fault.apply_script() + fault.restore_script())
    return script


# ---- the shell, tc and iptables --------------------------------------------------------------


@FAST
@given(interface=st.one_of(st.none(), hostile(r"[a-z]{1,4}[0-9]")), rate=hostile(r"[0-9]{1,3}(kbit|mbit)"),
       burst=hostile(r"[0-9]{1,3}kb"), latency=hostile(r"[0-9]{1,3}ms"), duration=ANY_JSON)
def test_bandwidth_values_are_refused_or_quoted(interface, rate, burst, latency, duration):
    build_or_refuse(lambda: network.bandwidth_fault("network-bandwidth", duration, rate, burst, latency, interface),
                    interface, rate, burst, latency)


@FAST
@given(interface=st.one_of(st.none(), hostile(r"eth[0-9]")), delay=hostile(r"[0-9]{1,3}ms"),
       jitter=st.one_of(st.none(), hostile(r"[0-9]{1,2}ms")))
def test_delay_values_are_refused_or_quoted(interface, delay, jitter):
    build_or_refuse(lambda: network.delay_fault("network-delay", 10, delay, jitter, interface), interface, delay, jitter)


@FAST
@given(peers=st.one_of(st.none(), hostile(r"10\.[0-9]\.0\.[0-9](/2[0-9])?"), st.lists(hostile(r"10\.0\.0\.[0-9]"), max_size=3)),
       ports=st.one_of(st.none(), ANY_JSON, st.lists(ANY_JSON, max_size=3)), percent=ANY_JSON,
       direction=hostile("both|ingress|egress"), keep_ssh=ANY_JSON)
def test_drop_values_are_refused_or_plain(peers, ports, percent, direction, keep_ssh):
    script = build_or_refuse(lambda: network.drop_fault("network-loss", 10, percent, peers, ports, direction, keep_ssh))
    if script is not None:  # what reaches iptables is normalised: addresses, numbers, known words
        for peer in peers if isinstance(peers, list) else [peers] if peers else []:
            assert re.fullmatch(r"[0-9./]+", args.ipv4_networks(peer, "peer")[0])


@FAST
@given(apiserver=hostile(r"https://10\.0\.0\.[0-9]:6443"), path=hostile(r"/etc/kubernetes/[a-z]{1,8}\.conf"),
       service=hostile(r"[a-z]{1,8}(@[a-z0-9]{1,3})?"))
def test_kubelet_apiserver_path_and_service_are_refused_or_quoted(apiserver, path, service):
    build_or_refuse(lambda: system.kubelet_fault("kubelet-config", 10, {}, apiserver=apiserver, kubeconfig_path=path,
                                                 service=service), apiserver, path, service)


@FAST
@given(changes=st.dictionaries(hostile(r"[a-z][A-Za-z]{0,8}"), st.one_of(hostile(r"[0-9a-z.]{0,6}"), ANY_JSON),
                               min_size=1, max_size=3),
       path=hostile(r"/var/lib/kubelet/[a-z]{1,6}\.yaml"))
def test_kubelet_config_changes_are_refused_or_plain(changes, path):
    script = build_or_refuse(lambda: system.kubelet_fault("kubelet-config", 10, {}, config_changes=changes,
                                                          config_path=path))
    if script is not None:  # keys and values sit inside single-quoted sed and echo text: plain only
        for key, value in changes.items():
            assert _SAFE.fullmatch(key) and _SAFE.fullmatch(str(value).lower())


@FAST
@given(service=hostile(r"[a-z][a-z0-9-]{0,8}(\.service)?"),
       template=st.sampled_from([system.DEFAULT_SERVICE_COMMAND, "labctl {action} {service}", "ctl {{x}} {action} {service}"]))
def test_service_names_are_refused_or_quoted(service, template):
    configuration = {"service_command": template}
    script = build_or_refuse(lambda: system.service_fault("service-stop", 10, configuration, service), service)
    if script is not None:
        assert not service.startswith("-")


@FAST
@given(template=st.one_of(ANY_JSON, hostile(r"ctl \{action\} \{service\}", r"\{[a-z0-9!:]{0,8}\}")))
def test_a_service_command_template_is_refused_or_formats(template):
    """The configuration is trusted (its command runs as written); a template is only checked so
    that a mistake is a clear refusal, never an IndexError or KeyError in the middle of a drill."""
    try:
        command = system.service_command({"service_command": template}, "stop", "kubelet")
    except InvalidArgument:
        return
    assert "stop" in command and "kubelet" in command


@FAST
@given(workers=ANY_JSON, megabytes=ANY_JSON, duration=ANY_JSON)
def test_load_values_are_refused_or_numbers(workers, megabytes, duration):
    build_or_refuse(lambda: system.stress_cpu_fault("stress-cpu", duration, workers))
    build_or_refuse(lambda: system.stress_memory_fault("stress-memory", duration, megabytes))


@FAST
@given(ids=st.one_of(hostile(r"chaosali-[0-9a-f]{8}"), st.lists(hostile(r"chaosali-[0-9a-f]{8}"), max_size=3)))
def test_fault_ids_reach_the_restore_script_refused_or_exact(ids):
    try:
        checked = markers.check_fault_ids(ids)
    except InvalidArgument:
        return
    script = faults.restore_script_for(checked, "network-")
    sh_n(script)
    assert all(re.fullmatch(r"chaosali-[0-9a-f]{8}", one) for one in checked)


# ---- SSH targets and HTTP headers ------------------------------------------------------------


@FAST
@given(target=st.one_of(hostile(r"(root@)?10\.0\.0\.[0-9](:22)?"),
                        st.fixed_dictionaries({"address": hostile(r"[a-z]{1,6}\.example"), "port": ANY_JSON,
                                               "user": st.one_of(st.none(), hostile(r"[a-z]{1,6}"))})))
def test_ssh_targets_are_refused_or_plain(target):
    try:
        host = parse_hosts([target])[0]
    except InvalidArgument:
        return
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*|[0-9A-Fa-f:.%]+", host.address)
    assert host.user is None or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", host.user)
    assert 1 <= host.port <= 65535 and not isinstance(host.port, bool)


def refusal_of(headers: dict) -> str:
    try:
        args.http_headers(headers)
    except InvalidArgument as refusal:
        return str(refusal)
    return ""


@FAST
@given(headers=st.dictionaries(hostile(r"X-[A-Za-z]{1,8}"), st.one_of(hostile(r"[A-Za-z0-9]{1,12}"), ANY_JSON),
                               max_size=3))
def test_http_headers_are_refused_or_valid_without_showing_values(headers):
    try:
        checked = args.http_headers(headers)
    except InvalidArgument as refusal:
        # what a refusal says whatever the values are: a value may happen to be a word of it (" and")
        wording = refusal_of({name: "\n" for name in headers}) + " ".join(map(str, headers))
        for value in headers.values():
            if isinstance(value, str) and len(value) >= 4 and value not in wording:
                assert value not in str(refusal)
        return
    for name, value in checked.items():
        check_header_validity((name, value))  # requests' own check: would raise with the value in it
        assert "\n" not in value and "\r" not in value and value == value.strip()


# ---- the number reader -----------------------------------------------------------------------

NUMBERS = st.one_of(ANY_JSON, st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats().map(repr), st.sampled_from(["nan", "inf", "-inf", "1e400", "١", "٣٠", "1_0", " 5 ", "0x10"]))


@FAST
@given(value=NUMBERS, low=st.integers(-5, 5), span=st.integers(0, 100), above=st.booleans())
def test_no_number_gets_past_as_nan_inf_bool_or_out_of_range(value, low, span, above):
    high = low + span
    try:
        got = args.number(value, "x", low, high, above=above)
    except InvalidArgument as refusal:
        assert str(refusal).startswith("x ")  # it names the argument
        assert f"{high:g}" in str(refusal)  # and its range
        return
    assert isinstance(got, float) and math.isfinite(got)
    assert not isinstance(value, bool)
    assert (got > low if above else got >= low) and got <= high
    assert not isinstance(value, str) or value.strip().isascii()


@FAST
@given(value=NUMBERS)
def test_no_whole_number_port_duration_or_percent_gets_past_out_of_range(value):
    for read, low, high in ((args.port, 1, 65535), (args.duration, 0, args.MAX_DURATION), (args.percent, 0, 100)):
        try:
            got = read(value)
        except InvalidArgument:
            continue
        assert not isinstance(value, bool) and math.isfinite(got) and low <= got <= high
        assert read is not args.duration or got > 0


@pytest.mark.parametrize("value", [True, False, float("nan"), float("inf"), "nan", "١", 10**400])
def test_the_number_reader_refuses_the_known_bad_values(value):
    with pytest.raises(InvalidArgument):
        args.number(value, "x", 0, 10)


# -- reports: any journal renders in every format ---------------------------------------------------------

JOURNALS = {name: json.loads((DATA / name).read_text()) for name in
            ("impact.json", "secret-failure.json", "deviated.json", "interrupted.json", "process-failure.json")}


def _everything() -> dict:
    """A journal with every part a report reads: random faults started together, HTTP targets, limits,
    the run's own judgement of its faults."""
    journal = copy.deepcopy(JOURNALS["impact.json"])
    cut = next(r["output"] for r in journal["run"] if isinstance(r["output"], dict) and "fault_id" in r["output"])
    journal["run"][0]["output"] = {"seed": 7, "why": "drawn", "faults": [
        {"entry": 0, "action": "cut_network", **cut, "start_at": cut["started_at"], "skew_seconds": 0.003}]}
    impact = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    impact["measures"]["http"] = {"web": {"samples": 200, "availability": 92.5, "p50": 0.004, "p95": 0.02, "p99": 0.25,
                                          "longest_failure_streak": 15, "error_windows": [
                                              {"from": impact["recording"]["started_at"],
                                               "to": impact["recording"]["started_at"], "reason": "refused"}]}}
    after = journal["steady_states"]["after"]
    after["probes"].append({**after["probes"][-1], "activity": {
        "type": "probe", "name": "faults-proven", "provider": {"type": "python", "func": "faults_observed"}},
        "output": {"all_seen": True, "proven": True, "faults": [{"kind": "reboot", "detail": "worker1"}],
                   "evidence": [{"what": "watch-nodes", "seen": True, "detail": "NotReady 13 s"}], "why": None}})
    journal["experiment"]["extensions"][0]["fmea"].update(min_availability=99, max_pods_lost=1,
                                                            max_unavailable_seconds=5, max_api_down_seconds=2)
    return journal


JOURNALS["everything"] = _everything()


def _paths(node: object, path: tuple = ()) -> list[tuple]:
    """Every place in a journal where a value sits."""
    paths = [path] if path else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        paths += _paths(child, (*path, key))
    return paths


# the keys a report reads: where a wrong type is most likely to break it
READ = set("""experiment title extensions name fmea failure_mode category severity impact recovery recovery_seconds
detection max_pods_lost max_unavailable_seconds max_recovery_seconds min_availability max_api_down_seconds
steady-state-hypothesis probes status deviated start end duration run rollbacks steady_states before after during
steady_state_met activity type provider func path url tolerance output exception tolerance_met fault_id kind
action started_at heals_at at start_at hosts host ok skew_seconds targets why faults restored changes up last
down_seconds watched_seconds down_at back_at stdout stderr recording measures missing started_at seconds scope
namespaces label_selector timeline t workload ready desired api_outages from to dropped errors pods_lost
api_down_seconds workloads nodes http seconds_below_desired below_desired recovered_after_fault_seconds lost pod
node reason replacement replaced_after_seconds seconds_not_ready not_ready ready_after_fault_seconds taints_seen
samples availability p50 p95 p99 longest_failure_streak error_windows""".split())
PATHS = {name: sorted(_paths(journal), key=lambda path: (path[-1] not in READ, len(path)))
         for name, journal in JOURNALS.items()}
READ_PATHS = {name: sum(path[-1] in READ for path in paths) for name, paths in PATHS.items()}
# what a hostile or broken journal holds where a report expects something else
WRONG = st.recursive(
    st.one_of(ANY_JSON, st.sampled_from(["12.5", "true", "", "2026-01-10T10:00:00", "x" * 300, "\u202e\u2028"]),
              st.sampled_from([1e308, -1e308, 10 ** 400, -1, 2 ** 63])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def nested(levels: int) -> object:
    value: object = "bottom"
    for level in range(levels):
        value = [value] if level % 2 else {"n": value}
    return value


def broken(journal: dict, changes: list[tuple[int, object]], paths: list[tuple]) -> dict:
    journal = copy.deepcopy(journal)
    for index, value in changes:
        *parents, last = paths[index]
        node = journal
        try:
            for key in parents:
                node = node[key]
            node[last] = value
        except (KeyError, IndexError, TypeError):  # an earlier change replaced a parent
            continue
    return journal


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(JOURNALS)), data=st.data())
def test_any_journal_renders_in_every_format(name, data):
    """Values of the wrong type anywhere (Infinity, 1e308, "12.5", a run entry that is a string,
    nesting 2000 levels deep): every format renders, each part left out says so, and a campaign
    with a good journal shows the good one whole."""
    where = st.one_of(st.integers(0, READ_PATHS[name] - 1), st.integers(0, len(PATHS[name]) - 1))
    changes = data.draw(st.lists(st.tuples(where,
                                           st.one_of(WRONG, st.integers(900, 2500).map(nested))), min_size=1,
                                 max_size=4))
    journal = broken(JOURNALS[name], changes, PATHS[name])
    try:
        run = read_run(journal, "broken.json")
    except InvalidArgument:  # no experiment object left: not a journal, said so
        assert not isinstance(journal, dict) or not isinstance(journal.get("experiment"), dict)
        return
    good = read_run(JOURNALS["deviated.json"], "good.json")
    for fmt in FORMATS:
        render([run], fmt)
        assert good.title in render([run, good], fmt)
    assert json.loads(render([run], "json"))["runs"][0]["problems"] == run.problems
