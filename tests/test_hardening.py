"""Hostile inputs (issue 11): each case is the input that got through before, refused now with a
message naming the argument, before anything reaches a host, a cluster or a server."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import time
import zlib

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from chaosali.chaos._radius import Caps
from chaosali.cli import main
from chaosali.cluster import kubeconfig, nodes
from chaosali.core import args, markers
from chaosali.core.errors import InvalidArgument
from chaosali.host import network, system
from chaosali.host.ssh import SSHSettings
from chaosali.lock import actions as lock_actions, controls as lock_controls
from webserver import Answer, LocalServer, body, encoded, redirect

# ---- numbers and caps ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", float("nan"), 10**400, "inf", True, "١٠"])
def test_the_blast_radius_cap_cannot_be_switched_off_by_a_non_number(value):
    with pytest.raises(InvalidArgument, match=r"max_node_percent .* must be a number from 0 to 100"):
        Caps.of(None, value, False)


@pytest.mark.parametrize("value", [10**400, float("inf"), "inf", "-inf", "1e400", float("nan")])
def test_a_timeout_that_is_not_finite_is_refused_not_overflowed(value):
    with pytest.raises(InvalidArgument, match=r"timeout \(seconds\) .* must be a number above 0 and at most 86400"):
        kubeconfig.Source.of("https://ops.example/k", "0" * 32, timeout=value)


@pytest.mark.parametrize("reader", [args.duration, args.percent, args.port])
def test_a_boolean_is_not_a_number(reader):
    with pytest.raises(InvalidArgument, match="True must be a"):
        reader(True)


def test_unicode_digits_never_reach_tc():
    with pytest.raises(InvalidArgument, match="rate '١mbit' is not a tc value: ASCII digits"):
        network.bandwidth_fault("network-bandwidth", 10, "١mbit", "32kb", "50ms", None)


@pytest.mark.parametrize("take", [lock_actions.lock_environment, lock_controls.before_experiment_control])
@pytest.mark.parametrize("duration", [1e9, 86401, "nan", True])
def test_the_lock_is_held_a_day_at_most(take, duration):
    arguments = {"context": {}} if take is lock_controls.before_experiment_control else {}
    with pytest.raises(Exception, match=r"duration \(seconds\) .* must be a whole number from 1 to 86400"):
        take(duration=duration, **arguments)


# ---- patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: system.kubelet_fault("kubelet-config", 10, {}, apiserver="https://10.0.0.9:6443\n"),
    lambda: system.kubelet_fault("kubelet-config", 10, {}, apiserver="https://10.0.0.9:6443",
                                 kubeconfig_path="/etc/kubernetes/kubelet.conf\n"),
    lambda: system.service_fault("service-stop", 10, {}, "kubelet\n"),
    lambda: markers.check_fault_ids(["chaosali-1a2b3c4d\n"]),
    lambda: network.bandwidth_fault("network-bandwidth", 10, "1mbit", "32kb", "50ms", "eth0\n"),
    lambda: network.bandwidth_fault("network-bandwidth", 10, "1mbit\n", "32kb", "50ms", None),
])
def test_a_trailing_newline_is_refused(build):
    with pytest.raises(InvalidArgument):
        build()


def test_an_http_method_with_a_trailing_newline_is_refused():
    from chaosali.core.args import http_method as check_method

    with pytest.raises(InvalidArgument, match="is not an HTTP method"):
        check_method("GET\n")


@pytest.mark.parametrize("service", ["--help", "-H", "-"])
def test_a_service_never_reaches_systemctl_as_an_option(service):
    with pytest.raises(InvalidArgument, match="not beginning with '-'"):
        system.service_fault("service-stop", 10, {}, service)


def test_an_interface_never_reaches_tc_as_an_option():
    with pytest.raises(InvalidArgument, match="not beginning with '-'"):
        network.bandwidth_fault("network-bandwidth", 10, "1mbit", "32kb", "50ms", "-h")


@pytest.mark.parametrize("template", [
    "systemctl {0} {service}", "systemctl {action} {x} {service}", "systemctl {action} {service", "{action} {service!r}",
    "{action:>9} {service}", "systemctl {action}", 42,
])
def test_a_service_command_template_with_other_fields_is_a_clear_refusal(template):
    with pytest.raises(InvalidArgument, match="configuration service_command .* must be a command with"):
        system.service_command({"service_command": template}, "stop", "kubelet")


def test_a_service_command_template_may_hold_literal_braces():
    command = system.service_command({"service_command": "ctl {{x}} {action} {service}"}, "stop", "kubelet")
    assert command == "ctl {x} stop kubelet"


def test_an_interface_found_on_the_host_is_checked_there_not_reparsed_as_shell(tmp_path):
    """The default route's device, as a hostile `ip` may print it, never runs as shell: not when
    apply.sh resolves it, nor when restore.sh sources the marker's env."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "marker"
    bin_dir.mkdir(), marker.mkdir()
    (marker / "env").touch()
    pwned = tmp_path / "pwned"
    hostile = f"x$(touch${{IFS}}{pwned})"
    (bin_dir / "ip").write_text(f"#!/bin/sh\necho 'default via 10.0.0.1 dev {hostile} proto static'\n")
    (bin_dir / "tc").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    fault = network.bandwidth_fault("network-bandwidth", 10, "1mbit", "32kb", "50ms", None)
    apply = fault.apply_script().replace(f"d={fault.directory}", f"d={marker}")
    run = subprocess.run(["sh", "-c", apply], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True)
    assert run.returncode == 2
    assert "give interface explicitly" in (marker / "apply.err").read_text()
    assert (marker / "env").read_text() == "" and not pwned.exists()
    # a plain name is written quoted, and the env sources back to it
    (bin_dir / "ip").write_text("#!/bin/sh\necho 'default via 10.0.0.1 dev eth0.5@x proto static'\n")
    assert subprocess.run(["sh", "-c", apply], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}).returncode == 0
    assert (marker / "env").read_text() == "DEV='eth0.5@x'\n"


# ---- SSH keys --------------------------------------------------------------------------------


def _key_text(key, form, passphrase: bytes | None) -> str:
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, form, encryption).decode()


@pytest.mark.parametrize("key", [rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                 ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()],
                         ids=["rsa", "ecdsa", "ed25519"])
@pytest.mark.parametrize("form", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH],
                         ids=["pkcs8", "openssh"])
def test_a_pkcs8_key_loads_and_a_wrong_passphrase_is_told_apart(key, form, tmp_path):
    encrypted = _key_text(key, form, b"right")
    assert SSHSettings(key=encrypted, passphrase="right")._pkey() is not None
    assert SSHSettings(key=_key_text(key, form, None))._pkey() is not None
    path = tmp_path / "id"
    path.write_text(encrypted)
    assert SSHSettings(key_path=str(path), passphrase="right")._pkey() is not None
    with pytest.raises(Exception, match=r"the passphrase does not decrypt the private key \(wrong passphrase\)"):
        SSHSettings(key=encrypted, passphrase="wrong")._pkey()
    with pytest.raises(Exception, match="the private key is encrypted and no passphrase was given"):
        SSHSettings(key=encrypted)._pkey()


def test_text_that_is_no_key_says_so():
    with pytest.raises(Exception, match=r"not a private key in OpenSSH or PEM \(PKCS#1, PKCS#8, SEC1\) format"):
        SSHSettings(key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")._pkey()


# ---- node addresses from the cluster API -----------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1", "0.0.0.0"])
def test_a_loopback_or_link_local_node_address_is_refused_unless_configured(address):
    found = {"InternalIP": address}
    with pytest.raises(Exception, match=f"node n1: the cluster API gives it the address {re.escape(address)}, "
                                        "a loopback or link-local one"):
        nodes._ssh_address("n1", found, nodes._address_book({}))
    allowed = nodes._address_book({"node_addresses_allow_local": True})
    assert nodes._ssh_address("n1", found, allowed) == address
    # the configuration's own map is trusted as it is
    mapped = nodes._address_book({"node_ssh_addresses": {"n1": "127.0.0.1"}})
    assert nodes._ssh_address("n1", found, mapped) == "127.0.0.1"


def test_a_node_address_that_is_no_ip_is_refused():
    with pytest.raises(Exception, match="'-oProxyCommand=x', which is not an IP address"):
        nodes._ssh_address("n1", {"InternalIP": "-oProxyCommand=x"}, nodes._address_book({}))
    assert nodes._ssh_address("n1", {"InternalIP": "10.0.0.7"}, nodes._address_book({})) == "10.0.0.7"


# ---- the kubeconfig download -----------------------------------------------------------------

KUBECONFIG = yaml.safe_dump({
    "apiVersion": "v1", "kind": "Config", "current-context": "c",
    "clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    "users": [{"name": "u", "user": {"token": "t0k3n"}}],
}).encode()


def _serve():
    server = LocalServer()
    yield server
    server.close()


server = pytest.fixture(_serve)
other_server = pytest.fixture(_serve)  # another port of the same host: another server all the same


def _source(url: str, body: bytes = KUBECONFIG, **options) -> kubeconfig.Source:
    return kubeconfig.Source.of(url, hashlib.md5(body).hexdigest(), **options)


@pytest.mark.parametrize("where", ["body", "headers"])
def test_the_timeout_bounds_the_whole_download_however_slow_the_trickle(server, tmp_path, where):
    server.routes["/k"] = Answer(trickle=where)
    started = time.monotonic()
    with pytest.raises(kubeconfig.FetchFailed, match=r"took more than 2 s"):
        kubeconfig.fetch_private(_source(server.url("/k"), timeout=2))
    assert time.monotonic() - started < 3


def test_a_redirect_within_the_same_host_is_followed(server):
    server.routes.update({"/old": redirect("/k"), "/k": body(KUBECONFIG)})
    fetched = kubeconfig.fetch_private(_source(server.url("/old")))
    try:
        assert fetched.server == "https://10.0.0.1:6443"
    finally:
        kubeconfig.remove_private(fetched)


def test_a_redirect_to_another_host_is_refused_and_the_headers_stay_home(server):
    server.routes.update({"/k": redirect(server.url("/elsewhere?sig=s3cret", host="localhost")),
                          "/elsewhere": body(KUBECONFIG)})
    with pytest.raises(kubeconfig.FetchFailed, match="redirects to another server") as refused:
        kubeconfig.fetch_private(_source(server.url("/k"), headers={"X-Auth-Token": "s3cret"}))
    assert "s3cret" not in str(refused.value)
    assert [path for path, _ in server.seen] == ["/k"]


@pytest.mark.parametrize("location", ["http://127.0.0.1:{other}\\@127.0.0.1:{home}/k2",
                                      "http://127.0.0.1:{other}@127.0.0.1:{home}/k2",
                                      "http://user:pass@127.0.0.1:{home}/k2",
                                      "/k2\\..\\k2", "\\\\127.0.0.1:{other}/k2"])
def test_a_redirect_location_with_a_backslash_or_userinfo_is_refused_and_the_token_stays_home(
        server, other_server, location):
    """urlsplit reads the host after the '@', urllib3 connects to the one before the backslash:
    the token went to the other port. Now such a Location is refused before any request."""
    home, other = server.port, other_server.port
    server.routes.update({"/k": redirect(location.format(home=home, other=other)), "/k2": body(KUBECONFIG)})
    other_server.routes.update({path: body(KUBECONFIG) for path in ("/k2", f"/%5C@127.0.0.1:{home}/k2")})
    with pytest.raises(kubeconfig.FetchFailed, match="a Location with a backslash, userinfo or no valid host"):
        kubeconfig.fetch_private(_source(server.url("/k"), headers={"Authorization": "Bearer s3cret"}))
    assert other_server.seen == [] and [path for path, _ in server.seen] == ["/k"]


def test_a_followed_redirect_to_another_port_gets_no_credential_header(server, other_server):
    from chaosali.service.probes import service_available

    sent = {"Authorization": "Bearer s3cret", "X-Api-Key": "s3cret", "Cookie": "id=s3cret", "X-Auth-Token": "s3cret",
            "X-Marked": "s3cret", "Accept": "text/plain"}
    server.routes.update({"/here": redirect("/ok"), "/away": redirect(other_server.url("/ok")),
                          "/ok": body(b"ok")})
    other_server.routes["/ok"] = body(b"ok")
    for path in ("/here", "/away"):
        result = service_available(server.url(path), headers=sent, follow_redirects=True,
                                   credential_headers=["x-marked"], contains="ok")
        assert result["ok"], result
    kept = {path: {k for k in headers if k in sent} for path, headers in server.seen}
    # same origin: every header goes on, but Cookie, which requests rebuilds from its jar on any redirect
    assert kept == {"/here": set(sent), "/ok": set(sent) - {"Cookie"}, "/away": set(sent)}
    assert [(path, {k for k in headers if k in sent}) for path, headers in other_server.seen] == [("/ok", {"Accept"})]


def _gzip_of_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(megabytes)) + packer.flush()


def test_a_body_the_server_encodes_anyway_is_refused_undecoded(server):
    """Its digests were checked against the decoded bytes, not the bytes as served; and a small
    "gzip, gzip" body decodes into gigabytes."""
    server.routes["/k"] = encoded("gzip", gzip.compress(KUBECONFIG))
    with pytest.raises(kubeconfig.FetchFailed, match=r"sent the kubeconfig encoded \(gzip\) although the request "
                                                     r"asked for it as it is.*Serve it without Content-Encoding"):
        kubeconfig.fetch_private(_source(server.url("/k")))  # the md5 of the kubeconfig, decoded
    assert server.seen[0][1]["Accept-Encoding"] == "identity"

    bomb = gzip.compress(_gzip_of_zeros(256))
    assert len(bomb) < 2048
    server.routes["/bomb"] = encoded("gzip, gzip", bomb)
    with pytest.raises(kubeconfig.FetchFailed, match=r"encoded \(gzip, gzip\)"):
        kubeconfig.fetch_private(_source(server.url("/bomb"), bomb))


def test_a_redirect_from_https_to_http_is_refused():
    from chaosali.core import http

    with pytest.raises(kubeconfig.FetchFailed, match="redirects from https to plain http"):
        http._redirect("https://ops.example/k", "http://ops.example/k", "the kubeconfig", kubeconfig.FetchFailed)
    assert http._redirect("http://ops.example/k", "https://ops.example/k2", "the kubeconfig") == "https://ops.example/k2"


@pytest.mark.parametrize("value", ["s3cret\n", " s3cret", "s3cret\r\nX-Other: 1", "s3cret ", "s3cr\x00et", "sécret"])
def test_a_bad_header_value_is_refused_up_front_without_showing_it(value):
    with socket.socket() as listener:  # a server that must never be knocked on
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/k"
        with pytest.raises(InvalidArgument, match="the value of X-Auth-Token must be text") as refused:
            _source(url, headers={"X-Auth-Token": value})
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert value.strip() not in str(refused.value)


@pytest.mark.parametrize("plugin", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "touch"}},
    {"auth-provider": {"name": "gcp", "config": {"cmd-path": "/bin/touch"}}},
])
def test_a_kubeconfig_with_a_credential_plugin_is_refused_unless_allowed(server, plugin):
    document = yaml.safe_load(KUBECONFIG)
    document["users"][0]["user"] = plugin
    body = yaml.safe_dump(document).encode()
    server.routes["/k"] = Answer(body)
    with pytest.raises(kubeconfig.FetchFailed, match=r"has credential plugins, .* user\(s\) 'u' .* allow_exec"):
        kubeconfig.fetch_private(_source(server.url("/k"), body))
    assert kubeconfig._check_kubeconfig(body, "here", None, allow_exec=True)[1] == "c"


# ---- credentials in a kubeconfig never reach a log, a message or a journal (issue 20, item 3) ----


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return closed.getsockname()[1]


def _kubeconfig(tmp_path, token: str, server: str) -> str:
    document = yaml.safe_load(KUBECONFIG)
    document["clusters"][0]["cluster"] = {"server": server, "insecure-skip-tls-verify": True}
    document["users"][0]["user"] = {"token": token}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_a_token_ending_in_a_line_break_is_cleaned_and_one_with_a_control_character_inside_refused(tmp_path):
    from chaosali.cluster.api import new_api_client

    server = f"https://127.0.0.1:{_closed_port()}"
    with new_api_client({"kubeconfig_path": _kubeconfig(tmp_path, "tok-s3cret\n", server)}) as api:
        assert api.configuration.api_key["BearerToken"] == "Bearer tok-s3cret"
    for hostile in ("tok-s3cret\r\nX-Evil: 1", "tok-s3cret\x00", "tok s3cret", "\n"):
        with pytest.raises(InvalidArgument, match="the kubeconfig's token .* cannot go into an HTTP header") as refused:
            new_api_client({"kubeconfig_path": _kubeconfig(tmp_path, hostile, server)})
        assert "s3cret" not in str(refused.value)


def test_the_clients_refusal_of_a_header_never_shows_its_value():
    from chaosali.cluster.api import ApiFailed, failing

    with pytest.raises(ApiFailed, match="a request header holds a character HTTP does not allow") as failed:
        with failing("list nodes", "https://admin:PASS@10.0.0.1:6443"):
            raise ValueError("Invalid header value b'Bearer tok-s3cret\\n'")
    assert "s3cret" not in str(failed.value) and failed.value.__suppress_context__


def test_a_server_url_with_userinfo_is_shown_without_it_in_logs_warnings_and_errors(tmp_path, caplog):
    from kubernetes import client

    from chaosali.cluster.api import ApiFailed, connect

    caplog.set_level("DEBUG", logger="chaostoolkit")
    path = _kubeconfig(tmp_path, "t0k3n", f"https://admin:PASS@127.0.0.1:{_closed_port()}")
    with connect({"kubeconfig_path": path}, retries=0, timeout=2) as cluster:
        with pytest.raises(ApiFailed, match=r"the Kubernetes API at https://127\.0\.0\.1:\d+ did not answer") as failed:
            cluster.call("list nodes", client.CoreV1Api(cluster.client).list_node)
    assert "TLS verification of the Kubernetes API at https://127.0.0.1:" in caplog.text
    assert "PASS" not in caplog.text + str(failed.value) and "admin" not in caplog.text + str(failed.value)


def test_a_fetched_kubeconfig_shows_its_server_without_userinfo(server, caplog):
    caplog.set_level("DEBUG", logger="chaostoolkit")
    document = yaml.safe_load(KUBECONFIG)
    document["clusters"][0]["cluster"]["server"] = "https://admin:PASS@10.0.0.1:6443"
    body = yaml.safe_dump(document).encode()
    server.routes["/k"] = Answer(body)
    fetched = kubeconfig.fetch_private(_source(server.url("/k"), body))
    kubeconfig.remove_private(fetched)
    assert fetched.summary()["server"] == "https://10.0.0.1:6443"
    assert "PASS" not in caplog.text and "admin" not in caplog.text


def test_a_chaos_run_with_such_a_kubeconfig_keeps_token_and_password_out_of_journal_and_log(tmp_path):
    from test_kubeconfig_fetch import probe, start_chaos

    path = _kubeconfig(tmp_path, "tok-s3cret\n", f"https://admin:PASS@127.0.0.1:{_closed_port()}")
    run = start_chaos(tmp_path / "run", {
        "title": "a kubeconfig with a token ending in a line break, and userinfo in its server URL",
        "description": "Its activity fails: the API is not there; nothing secret may be shown.",
        "configuration": {"kubeconfig_path": path, "kubernetes_request_timeout": 2},
        "method": [probe("get", "chaosali.cluster.probes", "get", {"kind": "Namespace", "name": "default"})]})
    journal = run.finish(timeout=60)
    failure = journal["run"][0]
    assert failure["status"] == "failed" and "did not answer" in failure["exception"][-1], failure
    shown = json.dumps({k: v for k, v in journal.items() if k != "experiment"}) + run.log + run.output
    assert "s3cret" not in shown and "PASS" not in shown


@pytest.mark.parametrize("where, entry", [
    ("user", {"tokenFile": "../../victim-secret"}),
    ("user", {"client-certificate": "/etc/ssl/x.crt", "client-key": "/root/.ssh/id_rsa"}),
    ("cluster", {"server": "https://10.0.0.1:6443", "certificate-authority": "/etc/shadow"}),
])
def test_a_downloaded_kubeconfig_naming_local_files_is_refused_unless_allowed(server, tmp_path, where, entry):
    """A tokenFile made the controller send one of its files as a Bearer token."""
    victim = tmp_path / "victim-secret"
    victim.write_text("the victim's secret")
    document = yaml.safe_load(KUBECONFIG)
    document[f"{where}s"][0][where] = entry
    body = yaml.safe_dump(document).encode()
    server.routes["/k"] = Answer(body)
    with pytest.raises(kubeconfig.FetchFailed, match=rf"names files of this machine.*{where} '\w' \(.*"
                                                     r"allow_local_files") as refused:
        kubeconfig.fetch_private(_source(server.url("/k"), body))
    assert all(value not in str(refused.value) for value in entry.values())
    assert kubeconfig._check_kubeconfig(body, "here", None, allow_local_files=True)[1] == "c"


def test_cleanup_removes_orphaned_kubeconfigs_without_any_host(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"chaosali-kubeconfig-{dead.pid}-abc"
    orphan.mkdir()
    (orphan / "kubeconfig-x").write_text("token")
    alive = tmp_path / f"chaosali-kubeconfig-{os.getpid()}-def"
    alive.mkdir()
    assert main(["cleanup"]) == 0
    assert not orphan.exists() and alive.exists()
    assert "no host was cleaned" in capsys.readouterr().out


def test_cleanup_removes_orphans_even_when_no_host_answers(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"chaosali-kubeconfig-{dead.pid}-abc"
    orphan.mkdir()
    variables = tmp_path / "vars.json"
    variables.write_text('{"configuration": {"ssh_connect_timeout": 0.5}}')
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["cleanup", "--var-file", str(variables), "--hosts", f"127.0.0.1:{port}"]) == 1
    assert not orphan.exists()


def test_cleanup_never_says_removed_for_a_symbolic_link_it_left(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep me")
    link = tmp_path / f"chaosali-kubeconfig-{dead.pid}-link"
    link.symlink_to(victim)
    assert main(["cleanup"]) == 0
    out = capsys.readouterr().out
    assert f"left {link}: a symbolic link, not a directory a chaosali run of this user made" in out
    assert "removed" not in out
    assert (victim / "data").read_text() == "keep me"


def test_the_keys_the_kubernetes_client_decodes_stay_in_the_private_directory(tmp_path, monkeypatch):
    """client-key-data becomes a file for the TLS library: never loose in the temp directory,
    where neither the run's end nor `chaosali cleanup` after a SIGKILL would find it."""
    from kubernetes import client

    from chaosali.cluster.api import load_kubeconfig
    from chaosali.core import private

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(private, "_made", {})
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    document = yaml.safe_load(KUBECONFIG)
    document["users"][0]["user"] = {"client-key-data": base64.b64encode(pem).decode(),
                                    "client-certificate-data": base64.b64encode(b"not checked here").decode()}
    settings = client.Configuration()
    load_kubeconfig(settings, [(str(tmp_path / "kubeconfig"), document)], "c")
    directory = private.process_directory()
    assert os.path.dirname(settings.key_file) == directory
    assert os.path.basename(directory).startswith(f"chaosali-kubeconfig-{os.getpid()}-")
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(directory)]
    private.remove(directory)


@pytest.mark.parametrize("path", ["items.-1", "items.١", "items. 1", "items.2"])
def test_a_json_path_index_is_ascii_digits_within_the_list(path):
    from chaosali.core.http import dig

    with pytest.raises(LookupError, match="no item"):
        dig({"items": ["a", "b"]}, path)
    assert dig({"items": ["a", "b"]}, "items.1") == "b"
