"""Secrets never reach a report: masked in every format, in their encoded forms, in free text and in
structures, learned from the journal and never from the environment."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus


from chaosali.report.figures import read_run
from chaosali.report.redact import MASK, redact
from chaosali.report.render import FORMATS, render
from reports import DB_SECRETS, ENV_TOKEN, SECRETS, load


# -- secrets ---------------------------------------------------------------------------------------------


def test_secrets_are_masked_in_every_format():
    journal = load("secret-failure.json")
    raw = json.dumps(journal)
    assert all(secret in raw for secret in SECRETS)  # the journal really holds them
    run = read_run(journal)
    [login] = [a for a in run.activities if a.name == "login-as-operator"]
    assert MASK in login.error and "svc.example/login" in login.error
    for fmt in FORMATS:
        out = render([run, read_run(load("deviated.json"))], fmt)
        for secret in SECRETS:
            assert secret not in out, f"{secret} shown in the {fmt} report"
        assert (MASK if fmt != "markdown" else r"\*\*\*") in out  # Markdown escapes its stars


def test_redact_masks_values_names_and_substrings_but_not_lookalikes():
    journal = {"experiment": {"title": "t", "secrets": {"db": {"password": "s3cr3t-pw", "pin": 4242}},
                              "configuration": {"kube_monkey_namespace": "kube-monkey", "monkey": "tolerance"}},
               "run": [{"output": {"apiKey": "AKIA-1", "private-key": "-----BEGIN", "token": {"nested": "x"},
                                   "key": "app", "apiVersion": "apps/v1", "pin": 4242, "count": 4242.5,
                                   "dsn": "pg://u:s3cr3t-pw@db", "secret_name": "", "passwords": ["abc"]},
                        "exception": ["ActivityFailed: token s3cr3t-pw and AKIA-1 rejected\n"]}]}
    masked = redact(journal)
    output = masked["run"][0]["output"]
    assert masked["experiment"]["secrets"]["db"] == {"password": MASK, "pin": MASK}
    assert masked["experiment"]["configuration"] == journal["experiment"]["configuration"]
    assert output["apiKey"] == output["private-key"] == output["token"] == output["key"] == MASK
    assert output["dsn"] == f"pg://u:{MASK}@db" and output["pin"] == MASK and output["count"] == 4242.5
    # a bare "key" (a label key in Kubernetes objects) is masked where it stands, not in other strings
    assert output["apiVersion"] == "apps/v1"
    assert masked["run"][0]["exception"] == [f"ActivityFailed: token {MASK} and {MASK} rejected\n"]
    assert journal["run"][0]["output"]["apiKey"] == "AKIA-1", "the journal itself is left as it was"


# -- secrets in reports (issue 11) -------------------------------------------------------------------------


def assert_hidden(journal: dict, secrets: list[str], what: str) -> None:
    run = read_run(journal, "leak.json")
    for fmt in FORMATS:
        out = render([run], fmt)
        for secret in secrets:
            assert secret not in out, f"{what}: {secret!r} shown in the {fmt} report"


def test_an_env_secret_unset_where_the_report_runs_does_not_leak(monkeypatch):
    """chaoslib copies every resolved secret into a dynamic configuration's provider.secrets,
    and the process echoed it (as is, and URL-encoded in a query)."""
    monkeypatch.delenv("CHAOSALI_RPT_TOKEN", raising=False)
    journal = load("impact.json")
    raw = json.dumps(journal)
    assert ENV_TOKEN in raw and journal["experiment"]["configuration"]["probe_started"]["provider"]["secrets"]
    journal["run"][2]["output"]["stderr"] += "retrying https://api.example/v1?token=tok%2Fen%2Bvalue%3D42%26x\n"
    assert_hidden(journal, [ENV_TOKEN, "tok%2Fen%2Bvalue%3D42%26x", "value=42"], "env secret")


def test_env_secrets_are_learned_from_the_journal_never_from_the_environment(monkeypatch):
    """A hostile journal names any variable of the reporting machine as an env secret, and holds
    activities named 0000-9999: the one masked would tell the variable's value."""
    monkeypatch.setenv("CHAOSALI_RPT_VICTIM", "4711")
    journal = load("secret-failure.json")
    journal["experiment"]["secrets"]["probe"] = {"pin": {"type": "env", "key": "CHAOSALI_RPT_VICTIM"}}
    template = journal["run"][0]
    journal["run"] = [{**template, "activity": {**template["activity"], "name": f"{n:04}"}} for n in range(10000)]
    out = json.loads(render([read_run(journal)], "json"))
    names = [a["name"] for a in out["runs"][0]["activities"] if a["phase"] == "method"]
    assert names == [f"{n:04}" for n in range(10000)]
    # the fixture's env secret, printed by a process, is masked only once the journal holds its resolved copy
    monkeypatch.setenv("CHAOSALI_TEST_SECRET_KEY", "env-secret-value-42")
    journal = load("secret-failure.json")
    assert "env-secret-value-42" in render([read_run(journal)], "html")
    journal["experiment"]["configuration"]["token"] = {"type": "probe", "provider": {
        "type": "python", "module": "m", "func": "f", "secrets": {"ssh": {"key_path": "env-secret-value-42"}}}}
    assert_hidden(journal, ["env-secret-value-42"], "resolved env secret")


def test_values_under_authorization_credentials_and_username_are_masked():
    journal = load("secret-failure.json")
    journal["run"][0]["output"]["request"] = {
        "headers": {"Authorization": "Basic ZHJpbGw6aHVudGVyMg==", "Cookie": "session=c00kie-v4lue"},
        "credentials": {"aws": "AKIAEXAMPLE99"}, "username": "operator-jane", "bearer": "b34rer-t0ken"}
    journal["run"][0]["output"]["log"] = "sent Authorization: Bearer eyJhbGciOi.payload.sig to the API"
    run = read_run(journal)
    request = run.journal["run"][0]["output"]["request"]
    assert request == {"headers": {"Authorization": MASK, "Cookie": MASK}, "credentials": MASK, "username": MASK,
                       "bearer": MASK}
    assert_hidden(journal, ["ZHJpbGw6aHVudGVyMg==", "c00kie-v4lue", "AKIAEXAMPLE99", "operator-jane", "b34rer-t0ken",
                            "eyJhbGciOi.payload.sig"], "credential-like names")
    # where a secret is kept, or which one, is no secret: paths and names stay
    masked = redact({"experiment": {"configuration": {"kubeconfig_path": "/etc/kube/admin.conf"}},
                     "run": [{"output": {"secret_name": "db-credentials", "tokenRef": "vault:x"}}]})
    assert masked["experiment"]["configuration"]["kubeconfig_path"] == "/etc/kube/admin.conf"
    assert masked["run"][0]["output"] == {"secret_name": "db-credentials", "tokenRef": "vault:x"}


def test_a_kubernetes_secret_returned_by_get_is_masked_whole():
    journal = load("impact.json")
    [read] = [r for r in journal["run"] if r["activity"]["name"] == "read-db-secret"]
    assert read["output"]["data"]["credentials"] == "bGFiLWRiLXBhc3MtODgxMg=="  # read with show_secret_data
    docker = base64.b64encode(b'{"auths": {"registry.example": {"auth": "cm9ib3Q6cjNnLXBhc3M="}}}').decode()
    listed = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        {"metadata": {"name": "pull", "namespace": "demo", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {".dockerconfigjson": docker}})}},
         "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": docker}}]}
    journal["run"].append({**read, "output": listed})
    journal["run"][2]["output"]["stdout"] = "password is lab-db-pass-8812\n"  # the decoded value, elsewhere
    run = read_run(journal)
    [first, second] = [a.output for a in run.activities if a.name == "read-db-secret"]
    assert first["data"] == MASK and first["metadata"]["name"] == "db-credentials" and first["type"] == "Opaque"
    assert second["items"][0]["data"] == MASK
    assert second["items"][0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == MASK
    assert_hidden(journal, [*DB_SECRETS, docker, docker[:40]], "Secret object")


def test_an_inline_secret_is_masked_in_its_encoded_forms():
    secret = "pa'ss\\wörd/+&=42"
    journal = load("secret-failure.json")
    journal["experiment"]["secrets"]["api"] = {"weird": secret}
    journal["run"][0]["output"]["said"] = [
        f"kwargs={{'password': {secret!r}}}",  # a Python repr, with escapes
        f"GET /login?u=x&p={quote(secret, safe='')}",  # URL-encoded
        f"form u=x&p={quote_plus(secret)}",
        f"json {json.dumps(secret)}", f"b64 {base64.b64encode(secret.encode()).decode()}",
    ]
    assert_hidden(journal, [secret, repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret),
                            json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()], "encoded forms")


# -- credentials in free text and structures (issue 20) ------------------------------------------------


LEAKS = [
    ("DB_PASSWORD=db-pw-0001", "db-pw-0001"), ("PGPASSWORD=pg-pw-0002 psql", "pg-pw-0002"),
    ("GITHUB_TOKEN=ghp_0003abcdef", "ghp_0003abcdef"), ("export API_TOKEN=api-tok-0004", "api-tok-0004"),
    ("x_api_key: xak-0005", "xak-0005"), ("privatekey=pk-0006", "pk-0006"), ("authtoken: at-0007", "at-0007"),
    ("cloning https://deploy:url-pw-0008@git.lab/repo.git", "url-pw-0008"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA0009\n-----END OPENSSH PRIVATE KEY-----\n",
     "b3BlbnNzaC1rZXktdjEAAAA0009"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut-short-0010", "MIIEcut-short-0010"),
    ("    client-key-data: LS0tLS1CRUdJTi0011", "LS0tLS1CRUdJTi0011"),
    ("mysqldump -u root -pmy-pw-0012 app", "my-pw-0012"), ("vault login --password cli-pw-0013", "cli-pw-0013"),
    ("headers={'Authorization': 'Token drf-0014'}", "drf-0014"), ("Authorization: Bearer ab15", "ab15"),
    ('{"auths": {"reg.lab": {"auth": "ZG9ja2VyOjAwMTY="}}}', "ZG9ja2VyOjAwMTY="),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMDE3In0.c2lnMDAxNw", "eyJzdWIiOiIwMDE3In0"),
]
# what only looks like a credential stays
LOOKALIKES = ["kube_monkey_namespace: chaos", "author: Jane", "secret_name: db-credentials",
              "--token-file /var/run/token", "ssh -p 2222 host", "mkdir -p /tmp/x", "Basic checks passed",
              "https://git.lab/repo.git", "tokens: 12 of 40", "PASSWORD_FILE=/etc/pw"]


def test_credentials_said_in_free_text_are_masked_and_lookalikes_stay():
    journal = load("process-failure.json")
    [process] = [r for r in journal["run"] if isinstance(r.get("output"), dict) and "stderr" in r["output"]][:1]
    process["output"]["stdout"] = "\n".join(text for text, _ in LEAKS) + "\n" + "\n".join(LOOKALIKES)
    process["output"]["stderr"] = "\n".join(text for text, _ in LEAKS)
    assert_hidden(journal, [secret for _, secret in LEAKS], "free text")
    shown = read_run(journal).journal["run"][journal["run"].index(process)]["output"]["stdout"]
    assert all(text in shown for text in LOOKALIKES), shown


def test_credentials_in_structures_are_masked():
    """A Kubernetes env entry, an argv list, a Secret a process printed as YAML or JSON."""
    manifest = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"
                "data:\n  password: c3RkLXB3LTAwMjE=\nstringData:\n  token: std-tok-0022\n")
    listed = json.dumps({"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "x"}, "type": "Opaque",
                                                    "data": {"k": "anNvbi0wMDIz"}}]}, indent=2)
    journal = load("process-failure.json")
    journal["run"][0]["output"] = {
        "env": [{"name": "DB_PASSWORD", "value": "env-pw-0020"}, {"name": "LOG_LEVEL", "value": "debug"}],
        "argv": ["mysql", "-u", "root", "-pargv-pw-0024", "--password", "argv-pw-0025", "-p", "3306"],
        "printed": {"status": 0, "stdout": manifest, "stderr": listed},
        "echoed": "connected with env-pw-0020 and std-tok-0022 (decoded std-pw-0021, json-0023)",
    }
    run = read_run(journal)
    output = run.journal["run"][0]["output"]
    assert output["env"] == [{"name": "DB_PASSWORD", "value": MASK}, {"name": "LOG_LEVEL", "value": "debug"}]
    assert output["argv"] == ["mysql", "-u", "root", f"-p{MASK}", "--password", MASK, "-p", "3306"]
    assert "kind: Secret" in output["printed"]["stdout"]  # the text stays, its values go
    assert_hidden(journal, ["env-pw-0020", "argv-pw-0024", "argv-pw-0025", "c3RkLXB3LTAwMjE=", "std-pw-0021",
                            "std-tok-0022", "anNvbi0wMDIz", "json-0023"], "structures")
