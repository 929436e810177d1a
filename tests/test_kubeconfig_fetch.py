"""The kubeconfig control: fetched by URL from a real HTTP(S) server, md5-checked, used by a real
``chaos run`` against the lab cluster (chaosali and chaostoolkit-kubernetes), then removed."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from chaoslib.exceptions import InterruptExecution, InvalidControl
import kubernetes.config
from kubernetes.config import kube_config

from chaosali.cluster import controls
from chaosali.lab.pki import make_pki
from helpers import wait_until
from webserver import LocalServer

CHAOS = Path(sys.executable).with_name("chaos")  # the real console script, not a pyenv shim needing HOME
WRONG_MD5 = "0123456789abcdef0123456789abcdef"
NOT_A_KUBECONFIG = b"<html><body>Welcome to the ops portal</body></html>\n"

SEEN_MODULE = '''
import os, stat

def seen(configuration=None):
    """What an activity sees of the kubeconfig: its path in env and configuration, its modes."""
    path = os.environ.get("KUBECONFIG")
    mode = lambda p: oct(stat.S_IMODE(os.stat(p).st_mode))
    return {"env": path, "configuration": (configuration or {}).get("kubeconfig_path"),
            "context": (configuration or {}).get("kubernetes_context"),
            "mode": mode(path), "dir_mode": mode(os.path.dirname(path))}
'''


# ---- a real chaos run, isolated from any other kubeconfig -----------------------------------


@dataclass
class ChaosRun:
    directory: Path
    process: subprocess.Popen
    output: str = ""

    def finish(self, timeout: float = 180) -> dict:
        """Wait for the run; its journal (the output is in the failure message)."""
        self.output = self.process.communicate(timeout=timeout)[0].decode()
        journal = self.directory / "journal.json"
        assert journal.exists(), self.output
        return json.loads(journal.read_text())

    @property
    def log(self) -> str:
        return (self.directory / "chaostoolkit.log").read_text()


def start_chaos(directory: Path, experiment: dict, **popen) -> ChaosRun:
    """``chaos run`` in ``directory`` with HOME there, no KUBECONFIG, a TMPDIR of its own, and the
    directory's ``helpers`` on PYTHONPATH: nothing but the experiment can give it a kubeconfig."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    helpers = directory / "helpers"
    helpers.mkdir(exist_ok=True)
    (helpers / "kubeconfig_seen.py").write_text(SEEN_MODULE)
    (directory / "experiment.json").write_text(json.dumps(experiment, indent=2))
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD")}
    env.update(HOME=str(directory), TMPDIR=str(directory / "tmp"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(helpers), env.get("PYTHONPATH")])))
    command = [str(CHAOS), "--no-version-check", "--log-file", str(directory / "chaostoolkit.log"),
               "run", "--journal-path", str(directory / "journal.json"), str(directory / "experiment.json")]
    process = subprocess.Popen(command, cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    return ChaosRun(directory, process)


def probe(title: str, module: str, func: str, arguments: dict | None = None) -> dict:
    provider = {"type": "python", "module": module, "func": func}
    return {"type": "probe", "name": title, "provider": {**provider, "arguments": arguments} if arguments else provider}


def fetch_experiment(arguments: dict, method: list | None = None) -> dict:
    """An experiment whose only kubeconfig is the one its control fetches (no configuration block)."""
    return {
        "title": "the kubeconfig is fetched by URL",
        "description": "Every activity needs the fetched kubeconfig.",
        "controls": [{"name": "kubeconfig", "provider": {
            "type": "python", "module": "chaosali.cluster.controls", "arguments": arguments}}],
        "steady-state-hypothesis": {"title": "the API is ready", "probes": [
            {**probe("api-ready", "chaosali.cluster.probes", "api_ready"), "tolerance": True}]},
        "method": method if method is not None else [
            probe("kube-system", "chaosali.cluster.probes", "get", {"kind": "Namespace", "name": "kube-system"}),
            probe("nodes-by-chaosk8s", "chaosk8s.node.probes", "get_nodes"),
            probe("kubeconfig-seen", "kubeconfig_seen", "seen"),
        ],
    }


# ---- a real HTTP(S) server on 127.0.0.1 -------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """An HTTPS server whose certificate (for 127.0.0.1) is signed by a CA nobody trusts by default."""
    pki = tmp_path_factory.mktemp("pki")
    make_pki(pki, ["127.0.0.1"])
    server = LocalServer(pki / "apiserver.crt", pki / "apiserver.key")
    server.ca = pki / "ca.crt"
    yield server
    server.close()


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def secrets_of(kubeconfig: bytes) -> list[str]:
    """The kubeconfig's credentials, raw and decoded: none may leak anywhere."""
    found = []
    for user in yaml.safe_load(kubeconfig)["users"]:
        for field, value in user["user"].items():
            if field in ("client-key-data", "token"):
                found.append(value)
                if field.endswith("-data"):
                    found.append(base64.b64decode(value).decode().splitlines()[1])  # a line of the PEM key
    assert found, "the kubeconfig has no credential to look for"
    return found


def assert_nothing_leaked(run: ChaosRun, kubeconfig: bytes) -> None:
    journal = (run.directory / "journal.json").read_text()
    for secret in secrets_of(kubeconfig):
        for where, text in (("journal", journal), ("chaostoolkit.log", run.log), ("output", run.output)):
            assert secret not in text, f"a credential of the kubeconfig is in the {where}"


def assert_interrupted_before_any_activity(journal: dict) -> None:
    assert journal["status"] == "interrupted"
    assert journal["run"] == [] and journal["rollbacks"] == []
    assert journal["steady_states"]["before"] is None, "the steady state ran: an activity ran without the kubeconfig"


# ---- real chaos runs --------------------------------------------------------------------------


def test_fetched_kubeconfig_serves_chaosali_and_chaostoolkit_kubernetes_then_is_removed(kube, http, tmp_path):
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/clusters/lab/admin.kubeconfig", body)
    run = start_chaos(tmp_path, fetch_experiment({"url": url, "md5": md5(body),
                                                 "sha256": hashlib.sha256(body).hexdigest()}))
    journal = run.finish()

    assert journal["status"] == "completed", run.output
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    namespace, nodes, seen = (activity["output"] for activity in journal["run"])
    assert [a["status"] for a in journal["run"]] == ["succeeded"] * 3, run.output
    assert namespace["metadata"]["name"] == "kube-system"
    assert len(nodes["items"]) == 3, "chaostoolkit-kubernetes did not reach the lab cluster through KUBECONFIG"
    assert seen["env"] == seen["configuration"], "chaosali and chaostoolkit-kubernetes saw different kubeconfigs"
    assert (seen["mode"], seen["dir_mode"]) == ("0o600", "0o700")
    assert seen["context"] == yaml.safe_load(body)["current-context"]
    assert not os.path.exists(seen["env"]) and not os.path.exists(os.path.dirname(seen["env"])), "the file was left"
    assert not list((tmp_path / "tmp").glob("chaosali-kubeconfig-*"))
    assert_nothing_leaked(run, body)


def test_after_a_sigkill_no_decoded_key_is_left_where_cleanup_cannot_find_it(kube, http, tmp_path):
    """The kubernetes client writes client-key-data, decoded, to a file for the TLS library; it
    used to go loose into the temp directory, where neither the fetched kubeconfig's removal
    nor `chaosali cleanup` after a SIGKILL found it."""
    body = kube.admin_kubeconfig.read_bytes()
    key = base64.b64decode(yaml.safe_load(body)["users"][0]["user"]["client-key-data"])
    url = http.serve("/killed.kubeconfig", body)
    method = [probe("kube-system", "chaosali.cluster.probes", "get", {"kind": "Namespace", "name": "kube-system"}),
              {"type": "action", "name": "long", "provider": {"type": "process", "path": "sleep", "arguments": "60"}}]
    run = start_chaos(tmp_path, fetch_experiment({"url": url, "md5": md5(body)}, method), start_new_session=True)
    temp = tmp_path / "tmp"
    written = lambda: [p for p in temp.rglob("*") if p.is_file() and key in p.read_bytes()]
    log = tmp_path / "chaostoolkit.log"
    assert wait_until(lambda: log.exists() and "Action: long" in log.read_text(), 60), run.process.poll()
    os.killpg(run.process.pid, signal.SIGKILL)
    run.process.wait()

    private = [p.name for p in temp.iterdir()]
    assert private and all(name.startswith(f"chaosali-kubeconfig-{run.process.pid}-") for name in private), private
    assert written(), "the client wrote no key file: this test proves nothing"
    assert all(p.relative_to(temp).parts[0] in private for p in written())
    cleanup = subprocess.run([sys.executable, "-m", "chaosali.cli", "cleanup"], env={**os.environ, "TMPDIR": str(temp)},
                             capture_output=True, text=True, timeout=60)
    assert cleanup.returncode == 0, cleanup.stderr
    assert list(temp.iterdir()) == [], cleanup.stdout


def test_wrong_md5_interrupts_before_any_activity_naming_url_and_both_digests(kube, http, tmp_path):
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/wrong-md5.kubeconfig", body)
    run = start_chaos(tmp_path, fetch_experiment({"url": url, "md5": WRONG_MD5}))
    journal = run.finish()

    assert_interrupted_before_any_activity(journal)
    assert run.process.returncode != 0
    message = next(line for line in run.log.splitlines() if "does not match its md5" in line)
    assert url in message and WRONG_MD5 in message and md5(body) in message
    assert not list((tmp_path / "tmp").glob("chaosali-kubeconfig-*")), "a refused kubeconfig was left on disk"
    assert_nothing_leaked(run, body)


@pytest.mark.parametrize("case", ["404", "not a kubeconfig"])
def test_missing_or_foreign_body_interrupts_with_a_clear_message(kube, http, tmp_path, case):
    if case == "404":
        url, digest, expected = http.url("/nowhere.kubeconfig"), WRONG_MD5, "HTTP 404"
    else:
        url = http.serve("/portal.html", NOT_A_KUBECONFIG)
        digest, expected = md5(NOT_A_KUBECONFIG), "is not a kubeconfig: it has no clusters, contexts, users"
    run = start_chaos(tmp_path, fetch_experiment({"url": url, "md5": digest}))
    journal = run.finish()

    assert_interrupted_before_any_activity(journal)
    assert f"{url}" in run.log and expected in run.log, run.log[-3000:]


def test_token_of_a_fetched_kubeconfig_never_reaches_journal_or_log(kube, http, tmp_path):
    body = kube.readonly_kubeconfig.read_bytes()  # a service account token, not a client key
    url = http.serve("/readonly.kubeconfig", body)
    method = [probe("kube-system", "chaosali.cluster.probes", "get", {"kind": "Namespace", "name": "kube-system"})]
    good = start_chaos(tmp_path / "good", fetch_experiment({"url": url, "md5": md5(body)}, method))
    bad = start_chaos(tmp_path / "bad", fetch_experiment({"url": url, "md5": WRONG_MD5}, method))

    assert good.finish()["status"] == "completed", good.output
    assert_interrupted_before_any_activity(bad.finish())
    assert_nothing_leaked(good, body)
    assert_nothing_leaked(bad, body)


def test_chaos_validate_refuses_a_control_without_md5_or_with_an_unknown_argument(http, tmp_path):
    for arguments, expected in (({"url": http.url("/x")}, "missing md5"),
                                ({"url": http.url("/x"), "md5": WRONG_MD5, "sha265": "typo"}, "unknown argument(s) sha265")):
        method = [probe("kube-system", "chaosali.cluster.probes", "get", {"kind": "Namespace", "name": "kube-system"})]
        (tmp_path / "experiment.json").write_text(json.dumps(fetch_experiment(arguments, method)))
        result = subprocess.run([str(CHAOS), "--no-version-check", "--no-log-file", "validate", "experiment.json"],
                                cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode != 0 and expected in result.stdout + result.stderr, result.stdout + result.stderr


# ---- the control in this process: limits, TLS, digests, restoring what it changed --------------


def before(configuration: dict | None = None, **arguments) -> None:
    controls.before_experiment_control(context={"title": "t"}, configuration=configuration, **arguments)


def interrupted(**arguments) -> str:
    with pytest.raises(InterruptExecution) as caught:
        before({}, **arguments)
    return str(caught.value)


@pytest.fixture
def restored():
    """Whatever a test fetched is removed, as the after-control does."""
    yield
    controls.cleanup_control()


def test_in_use_during_the_run_and_everything_restored_after(kube, http, monkeypatch, restored):
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/in-process.kubeconfig", body)
    monkeypatch.setenv("KUBECONFIG", "/elsewhere/config")
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    default_locations = (kube_config.KUBE_CONFIG_DEFAULT_LOCATION, kubernetes.config.KUBE_CONFIG_DEFAULT_LOCATION)
    configuration = {"kubeconfig_path": "/elsewhere/config", "other": 1}

    before(configuration, url=url, md5=md5(body).upper())  # digests compare whatever their case
    path = configuration["kubeconfig_path"]
    assert Path(path).read_bytes() == body
    assert os.environ["KUBECONFIG"] == path == kube_config.KUBE_CONFIG_DEFAULT_LOCATION  # what chaosk8s loads
    assert os.environ["KUBERNETES_CONTEXT"] == configuration["kubernetes_context"]

    controls.after_experiment_control(context={}, url=url, md5=md5(body))
    assert not os.path.exists(path)
    assert configuration == {"kubeconfig_path": "/elsewhere/config", "other": 1}
    assert os.environ["KUBECONFIG"] == "/elsewhere/config" and "KUBERNETES_CONTEXT" not in os.environ
    assert (kube_config.KUBE_CONFIG_DEFAULT_LOCATION, kubernetes.config.KUBE_CONFIG_DEFAULT_LOCATION) == default_locations


def test_size_limit_is_enforced_while_streaming_and_from_content_length(kube, http):
    big = b"# padding\n" * 210_000  # 2.1 MB
    for path, content_length in (("/big-declared", True), ("/big-streamed", False)):
        message = interrupted(url=http.serve(path, big, content_length=content_length), md5=md5(big))
        assert "larger than max_bytes (1048576 bytes)" in message, message
    body = kube.admin_kubeconfig.read_bytes()
    message = interrupted(url=http.serve("/small-limit", body, content_length=False), md5=md5(body), max_bytes=100)
    assert "larger than max_bytes (100 bytes)" in message


def test_sha256_is_checked_when_given(kube, http):
    body = kube.admin_kubeconfig.read_bytes()
    wrong = "ab" * 32
    message = interrupted(url=http.serve("/sha.kubeconfig", body), md5=md5(body), sha256=wrong)
    assert "does not match its sha256" in message and wrong in message and hashlib.sha256(body).hexdigest() in message


def test_self_signed_https_is_refused_unless_its_ca_is_given_or_tls_checks_are_knowingly_off(kube, tls, restored, caplog):
    body = kube.admin_kubeconfig.read_bytes()
    url = tls.serve("/tls.kubeconfig", body)

    message = interrupted(url=url, md5=md5(body))
    assert f"cannot fetch the kubeconfig from {url}: TLS failed: certificate verify failed: " in message
    assert "give its CA certificate as ca_bundle" in message

    configuration = {}
    before(configuration, url=url, md5=md5(body), ca_bundle=str(tls.ca))
    assert Path(configuration["kubeconfig_path"]).read_bytes() == body
    controls.cleanup_control()

    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        before({}, url=url, md5=md5(body), verify_tls=False)
    assert "TLS verification of" in caplog.text and "is OFF" in caplog.text


def test_messages_never_show_the_urls_credentials_or_query(http):
    port = http.port
    for url in (f"http://alice:hunter2@127.0.0.1:{port}/gone?token=querysecret",
                "http://alice:hunter2@127.0.0.1:1/closed?token=querysecret"):  # nothing listens on port 1
        message = interrupted(url=url, md5=WRONG_MD5)
        assert "hunter2" not in message and "querysecret" not in message and "alice" not in message, message
        assert urlsplit(url).path in message


def test_headers_are_sent(kube, http, restored):
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/private.kubeconfig", body, needs_header=("Authorization", "Bearer ops-token"))
    assert "HTTP 401" in interrupted(url=url, md5=md5(body))
    before({}, url=url, md5=md5(body), headers={"Authorization": "Bearer ops-token"})


def test_a_context_the_kubeconfig_lacks_is_refused_naming_those_it_has(kube, http):
    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/context.kubeconfig", body)
    message = interrupted(url=url, md5=md5(body), kubernetes_context="prod")
    assert "has no context 'prod'" in message and yaml.safe_load(body)["current-context"] in message


def test_bad_arguments_interrupt_instead_of_letting_the_run_go_on(http):
    assert "md5 must be the 32 hex digits" in interrupted(url=http.url("/x"))
    assert "md5 must be the 32 hex digits" in interrupted(url=http.url("/x"), md5="d41d8cd9")
    assert "http:// or https://" in interrupted(url="file:///etc/passwd", md5=WRONG_MD5)
    assert "ca_bundle and verify_tls false" in interrupted(url=http.url("/x"), md5=WRONG_MD5, verify_tls=False,
                                                           ca_bundle=__file__)
    # a misspelt argument is a TypeError when chaoslib calls the hook: it must interrupt too
    assert "unexpected keyword argument 'sha265'" in interrupted(url=http.url("/x"), md5=WRONG_MD5, sha265="x")
    with pytest.raises(InvalidControl, match="unknown argument"):
        controls.validate_control({"name": "k", "provider": {"arguments": {"url": "u", "md5": "m", "sha265": "x"}}})


def test_fetch_to_path_the_body_of_a_fetch_kubeconfig_action(kube, http, tmp_path):
    from chaosali.cluster import kubeconfig

    body = kube.admin_kubeconfig.read_bytes()
    url = http.serve("/action.kubeconfig", body)
    target = tmp_path / "fetched.kubeconfig"
    target.write_text("the previous kubeconfig")

    with pytest.raises(kubeconfig.FetchFailed, match="does not match its md5"):
        kubeconfig.fetch_to_path(str(target), kubeconfig.Source.of(url, WRONG_MD5))
    assert target.read_text() == "the previous kubeconfig" and [p.name for p in tmp_path.iterdir()] == [target.name]

    summary = kubeconfig.fetch_to_path(str(target), kubeconfig.Source.of(url, md5(body)))
    assert target.read_bytes() == body and oct(target.stat().st_mode & 0o777) == "0o600"
    assert summary["path"] == str(target) and summary["md5"] == md5(body) and summary["bytes"] == len(body)
    assert not any(secret in json.dumps(summary) for secret in secrets_of(body))
