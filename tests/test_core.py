"""The neutral core: the argument vocabulary refuses hostile values, the fan-out keeps failures
apart, and the run memory is forgotten when a Chaos Toolkit run ends."""

from __future__ import annotations

import pytest
from chaoslib.experiment import run_experiment

from chaosali.core import args, memory
from chaosali.core.errors import EndpointError, InvalidArgument
from chaosali.core.fanout import Endpoint, fan_out


@pytest.mark.parametrize("value", [True, False, "nan", "NaN", float("nan"), "inf", float("-inf"), "1e400",
                                   10**400, "١", "٣٠", "5x", "0x10", "", None, [1], "1_000"])
def test_a_number_refuses_what_is_no_finite_ascii_number(value) -> None:
    with pytest.raises(InvalidArgument, match=r"^timeout .* must be a number"):
        args.number(value, "timeout", 0, 3600)


@pytest.mark.parametrize("value, expected", [(5, 5.0), ("5", 5.0), (" 2.5 ", 2.5), ("1e2", 100.0), (0.25, 0.25)])
def test_a_number_takes_json_numbers_and_their_text(value, expected) -> None:
    assert args.number(value, "timeout", 0, 3600) == expected


def test_a_whole_number_takes_integral_floats_and_refuses_fractions() -> None:
    assert args.whole(2.0, "count", 1) == 2
    assert args.whole("7", "count", 1) == 7
    with pytest.raises(InvalidArgument, match=r"count 2\.5 must be a whole number of 1 or more"):
        args.whole(2.5, "count", 1)


def test_a_huge_value_is_refused_with_a_short_message() -> None:
    with pytest.raises(InvalidArgument) as refused:
        args.whole(10**400, "count", 1, 10)
    assert "must be a whole number from 1 to 10" in str(refused.value)
    assert len(str(refused.value)) < 120


def test_a_boolean_is_no_duration_percent_or_port() -> None:
    with pytest.raises(InvalidArgument, match="duration"):
        args.duration(True)
    with pytest.raises(InvalidArgument, match="percent"):
        args.percent(True)
    with pytest.raises(InvalidArgument, match="port"):
        args.port(True)


def test_durations_and_percents_have_their_bounds() -> None:
    assert args.duration("30") == 30.0
    with pytest.raises(InvalidArgument, match=r"above 0 and at most 86400"):
        args.duration(0)
    with pytest.raises(InvalidArgument, match=r"above 0 and at most 86400"):
        args.duration(86401)
    assert args.percent(0, zero=True) == 0.0
    with pytest.raises(InvalidArgument, match="percent 101 must be a number above 0 and at most 100"):
        args.percent(101)


def test_ports_are_checked_one_by_one_and_capped() -> None:
    assert args.ports("443") == [443]
    assert args.ports([80, "8080"]) == [80, 8080]
    with pytest.raises(InvalidArgument, match="port 70000 must be a whole number from 1 to 65535"):
        args.ports([80, 70000])
    with pytest.raises(InvalidArgument, match="at most 2 ports, not 3"):
        args.ports([1, 2, 3], most=2)


def test_a_setting_reads_configuration_with_the_same_rules() -> None:
    assert args.setting({}, "ssh_connect_timeout", 5.0, args.seconds) == 5.0
    assert args.setting({"ssh_connect_timeout": "2"}, "ssh_connect_timeout", 5.0, args.seconds) == 2.0
    for bad in ("nan", -1, "inf", 0):
        with pytest.raises(InvalidArgument, match="configuration ssh_connect_timeout"):
            args.setting({"ssh_connect_timeout": bad}, "ssh_connect_timeout", 5.0, args.seconds)


def test_booleans_from_json_and_text_only() -> None:
    assert args.boolean("yes", "wait") is True
    assert args.boolean(0, "wait") is False
    for bad in ("maybe", 2.0, None, [True]):
        with pytest.raises(InvalidArgument, match="wait must be true or false"):
            args.boolean(bad, "wait")


@pytest.mark.parametrize("value", ["10.0.0.1; reboot", "$(id)", "host name", "-oProxyCommand=x", "", "١٠.0.0.1"])
def test_an_address_refuses_anything_a_shell_or_url_could_read_more_into(value) -> None:
    with pytest.raises(InvalidArgument, match="is not a host name or an IP address"):
        args.address(value, "target")


def test_an_address_takes_names_and_both_ip_versions() -> None:
    assert args.address("node-1.example", "target") == "node-1.example"
    assert args.address("[fd00::1]", "target") == "fd00::1"


def test_ipv4_networks_are_normalised_and_ipv6_refused_with_the_reason() -> None:
    assert args.ipv4_networks(["10.0.0.5", "10.1.2.3/24"], "peer") == ["10.0.0.5/32", "10.1.2.0/24"]
    with pytest.raises(InvalidArgument, match="only IPv4"):
        args.ipv4_networks("fd00::1", "peer")


def test_choice_and_selectors() -> None:
    assert args.choice("Egress", "direction", ("both", "ingress", "egress")) == "egress"
    with pytest.raises(InvalidArgument, match="direction 'up' must be one of both, ingress, egress"):
        args.choice("up", "direction", ("both", "ingress", "egress"))
    assert args.label_selector({"app": "web", "tier": ""}) == "app=web,tier"
    with pytest.raises(InvalidArgument, match="non-empty selector"):
        args.label_selector("  ")


def test_a_url_is_shown_without_its_credentials_or_query() -> None:
    shown = args.display_url("https://user:s3cret@ops.example:8443/kube/config?token=abc#frag")
    assert shown == "https://ops.example:8443/kube/config?…"
    assert args.display_url("https://h:notaport/") == "<malformed URL>"


def test_a_fan_out_keeps_each_failure_to_its_endpoint() -> None:
    def work(endpoint: Endpoint) -> str:
        if endpoint.port == 2:
            raise EndpointError("refused")
        if endpoint.port == 3:
            raise KeyError("bug")
        return endpoint.address

    endpoints = [Endpoint("a", 1), Endpoint("b", 2), Endpoint("c", 3, name="third")]
    results, errors = fan_out(endpoints, work, quiet=True)
    assert results == {endpoints[0]: "a"}
    assert errors == {endpoints[1]: "refused", endpoints[2]: "KeyError: 'bug'"}
    assert str(endpoints[2]) == "third (c:3)"


# what the activities of the experiment below saw in the run's memory
seen: list[dict] = []


def remember(value: str) -> None:
    memory.section("test")[value] = True


def recall() -> list:
    found = sorted(memory.section("test"))
    seen.append({"found": found})
    return found


def test_the_run_memory_lasts_one_run_and_is_forgotten_when_it_ends() -> None:
    experiment = {
        "title": "memory", "description": "the memory lives as long as a run",
        "method": [
            {"type": "action", "name": "remember", "provider": {
                "type": "python", "module": __name__, "func": "remember", "arguments": {"value": "x"}}},
            {"type": "probe", "name": "recall", "provider": {"type": "python", "module": __name__, "func": "recall"}},
        ],
    }
    forgotten: list[bool] = []
    seen.clear()
    journal = run_experiment(experiment)
    assert journal["status"] == "completed"
    assert seen == [{"found": ["x"]}]  # within the run, the action's memory reached the probe
    memory.on_forget(lambda: forgotten.append(True))
    assert memory.section("test") == {}  # the run's end forgot it
    journal = run_experiment(experiment)
    assert seen[-1] == {"found": ["x"]}
    assert forgotten == [True]  # and called what was registered to run then
    assert memory.section("test") == {}


@pytest.mark.parametrize("text, parts", [
    ("10.0.0.5", (None, "10.0.0.5", None)),
    ("ops@node-1.lab:2222", ("ops", "node-1.lab", "2222")),
    ("fe80::1", (None, "fe80::1", None)),
    ("[fd00::5]:2222", (None, "fd00::5", "2222")),
    ("root@[fd00::5]", ("root", "fd00::5", None)),
    ("fe80::1%veth0@if5", (None, "fe80::1%veth0@if5", None)),
    ("[fd00::5]x", (None, "fd00::5", "x")),
])
def test_an_endpoint_splits_into_user_host_and_port_with_ipv6(text, parts) -> None:
    assert args.split_endpoint(text) == parts


def test_ssh_targets_and_vip_members_read_ipv6_alike() -> None:
    from chaosali.host.ssh import parse_hosts
    from chaosali.service._members import from_list

    assert [(h.user, h.address, h.port) for h in parse_hosts(["fe80::1", "ops@[fd00::5]:2222"])] == [
        (None, "fe80::1", 22), ("ops", "fd00::5", 2222)]
    assert from_list(["fe80::1", "[fd00::5]:2222"], 80) == [
        {"address": "fe80::1", "port": 80}, {"address": "fd00::5", "port": 2222}]
    with pytest.raises(InvalidArgument, match="port"):
        parse_hosts(["[fd00::5]x"])


def test_waiting_stops_when_it_holds_or_at_the_deadline_with_what_is_awaited() -> None:
    import time

    from chaosali.core.waiting import wait_until

    calls = iter(range(100))
    assert wait_until(lambda: next(calls), time.monotonic() + 5, 0.01, lambda n: n >= 3) == (True, 3)
    started = time.monotonic()
    held, left = wait_until(lambda: ["pod-a"], started + 0.3, 30, lambda left: not left)
    took = time.monotonic() - started
    assert (held, left) == (False, ["pod-a"]) and 0.3 <= took < 15  # a step never sleeps past the deadline
    once = []
    assert wait_until(lambda: once.append(1), started - 1, 1.0) == (False, None) and once == [1]


def test_tcp_reachability_is_worded_once_with_the_port() -> None:
    import socket

    from chaosali.core.fanout import connect_tcp

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert connect_tcp("127.0.0.1", port, 1.0) is True
    with pytest.raises(EndpointError, match=rf"^TCP connection to port {port} failed: connection refused$"):
        connect_tcp("127.0.0.1", port, 1.0)


def test_one_tls_rule_for_every_http_client(tmp_path) -> None:
    from chaosali.cluster import kubeconfig
    from chaosali.core import http

    bundle = tmp_path / "ca.pem"
    bundle.write_text("a CA bundle")
    assert args.tls_verify(True, str(bundle)) == str(bundle) and args.tls_verify("false", None) is False
    for contradiction in (lambda: http.check("http://127.0.0.1/", verify_tls=False, ca_bundle=str(bundle)),
                          lambda: kubeconfig.Source.of("https://127.0.0.1/k", "0" * 32, verify_tls=False,
                                                       ca_bundle=str(bundle))):
        with pytest.raises(InvalidArgument, match="ca_bundle and verify_tls false contradict each other"):
            contradiction()


def test_down_windows_open_at_the_first_down_sample_and_close_at_the_first_up_one() -> None:
    from chaosali.core.windows import Windows

    windows = Windows()
    changes = [windows.sample(up, at) for at, up in [(0, True), (1, False), (2, False), (3, True), (4, False)]]
    assert changes == [None, "down", None, "back", "down"] and windows.down
    windows.close(6)
    assert windows.spans == [{"from": 1, "to": 3}, {"from": 4, "to": 6}] and windows.seconds() == 4
    why = Windows()
    why.sample(False, "10:00:01", reason="HTTP 503")
    assert why.spans == [{"from": "10:00:01", "to": None, "reason": "HTTP 503"}]


def test_memory_set_aside_is_as_it_was_after_the_block():
    from chaosali.core import memory

    kept = memory.section("a test's own section")
    kept["before"] = 1
    with memory.aside():
        kept["during"] = 2
        memory.section("another test section")["during"] = 3
    assert kept == {"before": 1} and memory.section("another test section") == {}
    memory.forget()
