"""The ``chaosali`` command: the local lab, cleanup after a crashed drill, and journal reports."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from chaoslib.exceptions import ActivityFailed, ChaosException

from chaosali import __version__
from chaosali.core import ledger, private
from chaosali.core.fanout import fan_out
from chaosali.core.markers import FAULT_ID_PREFIX
from chaosali.host import faults
from chaosali.host.catalogue import CATALOGUE
from chaosali.host.preflight import check_hosts, fault_names, table
from chaosali.host.ssh import SSHSettings, parse_hosts, run_script
from chaosali.plan.render import FORMATS as PLAN_FORMATS
from chaosali.report.planned import compared, read_plan, render_versus
from chaosali.report.render import FORMATS, format_for, load_report, render
from chaosali.report.trends import DEFAULT_MARGIN, Margin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaosali", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chaosali {__version__}",
                        help="print the installed chaostoolkit-ali version and exit")
    commands = parser.add_subparsers(dest="command", required=True)

    lab = commands.add_parser("lab", help="the local lab of SSH hosts (network namespaces)")
    lab.add_argument("action", choices=["up", "down", "status", "image"],
                     help="image: build the image of scheduled drills (cached) and import it into every real worker")
    lab.add_argument("--hosts", type=int, default=0, help="plain hosts, without a cluster (up)")
    lab.add_argument("--masters", type=int, default=1, help="control-plane hosts, 1 or 3 (up; default 1)")
    lab.add_argument("--workers", type=int, default=2, help="worker hosts (up; default 2)")
    lab.add_argument("--nodes", choices=["kwok", "real", "auto"],
                     help="what the workers run: kwok (simulated, no containers), a real kubelet and containerd, "
                          "or auto: real if this machine can run containers, else kwok, saying what is missing "
                          "(up; default: what a lab that is up runs, else auto)")
    lab.add_argument("--monitoring", action="store_true",
                     help="with Prometheus, Alertmanager and node exporters on a host of their own (up)")
    lab.add_argument("--name", default="chaosali", help="prefix of everything the lab creates")
    lab.add_argument("--subnet", default="10.213.0.0/24", help="the lab's address range (up)")
    lab.add_argument("--state-dir", type=Path, help="where labs keep their state (default: /var/lib/chaosali-lab)")

    cleanup = commands.add_parser(
        "cleanup", help="heal what runs that died left open in their ledgers (oldest first), then remove every "
                        "chaosali fault (markers, rules, qdiscs) from hosts, a drain's cordon and kube-monkey's "
                        "victim labels from the cluster (kubeconfig_path in --var-file), and the private "
                        "kubeconfigs of runs that died, even after a crash"
    )
    cleanup.add_argument("--var-file", type=Path,
                         help="a chaos --var-file with ssh secrets (and lab_hosts when --hosts is not given)")
    cleanup.add_argument("--hosts", nargs="+", help="[user@]address[:port] of each host")
    cleanup.add_argument("--list", action="store_true",
                         help="only show the faults the runs' ledgers hold open, touching nothing")

    check = commands.add_parser(
        "check", help="tell whether each host can take and heal each fault (run it before your first drill)"
    )
    check.add_argument("--var-file", type=Path, required=True,
                       help="a chaos --var-file with ssh secrets and configuration (lab_hosts when --hosts is not given)")
    check.add_argument("--hosts", nargs="+", help="[user@]address[:port] of each host")
    check.add_argument("--faults", help="host actions or fault kinds, separated by commas (default: every one)")
    check.add_argument("--secrets", default="ssh", help="the var file's secrets scope to log in with (default: ssh)")
    check.add_argument("--format", choices=["text", "json"], default="text")

    report = commands.add_parser(
        "report", help="tell what chaos runs did, from their journals: story, FMEA, timeline, recovery time"
    )
    report.add_argument("journals", type=Path, nargs="*", metavar="JOURNAL",
                        help="journal files of `chaos run`, directories of them, or a quoted glob; several give a "
                             "campaign summary first, and a trend per experiment run more than once")
    report.add_argument("--run", dest="runs", action="append", default=[], metavar="NAME",
                        help="a scheduled drill's run, as `chaosali runs` lists it: its journal is read from the "
                             "cluster of --var-file's kubeconfig; may be repeated")
    report.add_argument("--var-file", type=Path, help="with --run: a chaos var file with kubeconfig_path")
    report.add_argument("--namespace", default="chaos", help="with --run: the drills' namespace (default: chaos)")
    report.add_argument("-o", "--output", type=Path, help="write the report to this file (default: stdout)")
    report.add_argument("--format", choices=FORMATS,
                        help="text (the story; default), html (one self-contained page), markdown, json "
                             "(the figures), junit (a test run for CI); default: from the -o suffix (.html, "
                             ".md, .json, .xml), else text")
    report.add_argument("--margin", type=float, default=DEFAULT_MARGIN.percent, metavar="PERCENT",
                        help="a time worse than the median of the previous runs by more than this per cent is a "
                             f"regression (default: {DEFAULT_MARGIN.percent:g})")
    report.add_argument("--margin-seconds", type=float, default=DEFAULT_MARGIN.seconds, metavar="S",
                        help=f"...and by at least these seconds (default: {DEFAULT_MARGIN.seconds:g})")
    report.add_argument("--plan", type=Path, metavar="PLAN.json",
                        help="a plan of `chaosali plan --format json`: show the hosts planned beside those each "
                             "activity hit (text, markdown, json); without it, the plan a run's plan control made")

    plan = commands.add_parser(
        "plan", help="show what a drill would hit (hosts, nodes, workloads, budgets, blast radius), injecting nothing"
    )
    plan.add_argument("experiment", metavar="EXPERIMENT", help="the experiment file, as given to `chaos run`")
    plan.add_argument("--var-file", dest="var_files", action="append", default=[], metavar="F",
                      help="a chaos var file (JSON or YAML configuration and secrets); may be repeated")
    plan.add_argument("--var", dest="variables", action="append", default=[], metavar="NAME[:TYPE]=VALUE",
                      help="a configuration value, as `chaos run --var`; may be repeated")
    plan.add_argument("--format", choices=PLAN_FORMATS, default="text")
    plan.add_argument("-o", "--output", type=Path, help="write the plan to this file (default: stdout)")
    plan.add_argument("--no-preflight", dest="preflight", action="store_false",
                      help="skip the hosts' read-only preflight (no SSH)")
    plan.add_argument("--rbac", action="store_true",
                      help="print the least-privilege RBAC the drill needs instead (a ClusterRole and Roles as YAML; "
                           "--format json: each rule and why), asking nothing of the cluster")

    schedule = commands.add_parser(
        "schedule", help="run a drill inside the cluster, now or on a cron schedule: its least-privilege account, "
                         "its experiment, configuration and SSH credentials, and a Job or CronJob (kubeconfig_path "
                         "in --var-file for --apply)"
    )
    schedule.add_argument("experiment", metavar="EXPERIMENT", help="the experiment file, as given to `chaos run`")
    schedule.add_argument("--var-file", dest="var_files", action="append", required=True, metavar="F",
                          help="a chaos var file (its secrets and the files they name go to a Secret); may be repeated")
    schedule.add_argument("--var", dest="variables", action="append", default=[], metavar="NAME[:TYPE]=VALUE",
                          help="a configuration value, as `chaos run --var`; may be repeated")
    when = schedule.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="SPEC", help="a CronJob with this schedule, e.g. '0 3 * * 2'")
    when.add_argument("--now", action="store_true", help="a Job that runs once, now")
    schedule.add_argument("--namespace", default="chaos", help="where the drill's objects live (default: chaos)")
    schedule.add_argument("--image", help="the runner's image (default: chaostoolkit-ali:<this version>, "
                                          "as the Containerfile tags it)")
    schedule.add_argument("--journal-claim", metavar="PVC",
                          help="a PersistentVolumeClaim that keeps every journal too (default: the cluster keeps each "
                               "run's journal in a Secret owned by its Job)")
    out = schedule.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", type=Path, help="write the manifests to this file (default: stdout)")
    out.add_argument("--apply", action="store_true", help="apply them to the cluster of the var file's kubeconfig")

    runs = commands.add_parser(
        "runs", help="list the runs of scheduled drills from the cluster (kubeconfig_path in --var-file): start, "
                     "duration, verdict, proof, impact, stop condition, what was left behind, and their journals"
    )
    runs.add_argument("--var-file", type=Path, required=True, help="a chaos var file with kubeconfig_path")
    runs.add_argument("--namespace", default="chaos", help="the drills' namespace (default: chaos)")
    runs.add_argument("--schedule", help="only the runs of this schedule (e.g. chaosali-master-netcut)")
    runs.add_argument("--format", choices=["text", "json"], default="text")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    try:
        if args.command == "lab":
            return _lab(args)
        if args.command == "report":
            return _report(args)
        if args.command == "check":
            return _check(args)
        if args.command == "plan":
            return _plan(args)
        if args.command == "schedule":
            return _schedule(args)
        if args.command == "runs":
            return _runs(args)
        return _cleanup(args)
    except ActivityFailed as error:
        return _failed(error)


def _failed(error: Exception) -> int:
    print(f"chaosali: {error}", file=sys.stderr)
    return 1


def _lab(args: argparse.Namespace) -> int:
    # imported here: no other command needs the lab (nor its Kubernetes build and PKI)
    from chaosali.lab.cluster import Cluster
    from chaosali.lab.hosts import DEFAULT_STATE_DIR, Lab, LabError

    try:
        lab = Lab.load(args.name, args.state_dir or DEFAULT_STATE_DIR)
        if args.action == "up":
            lab.subnet = lab.subnet if lab.hosts else args.subnet
            shape = ""
            if args.hosts:
                lab.up(hosts=args.hosts)
            else:
                cluster = Cluster(lab, nodes=args.nodes)
                cluster.up(masters=args.masters, workers=args.workers, monitored=args.monitoring)
                shape = f" ({cluster.node_kind} workers)"
            print(f"lab {lab.name} is up: {len(lab.hosts)} hosts{shape}; "
                  f"chaos run --var-file {lab.vars_path} EXPERIMENT")
        elif args.action == "image":
            _lab_image(lab)
        elif args.action == "down":
            lab.down()
            print(f"lab {lab.name} is down")
        else:
            status = lab.status()
            built = Cluster.of(lab)
            if built and lab.vars_path.exists():  # the var file is written once the cluster is bootstrapped
                status = {"cluster": built.status(), **status}
            print(json.dumps(status, indent=2))
    except LabError as error:
        return _failed(error)
    return 0


def _lab_image(lab: Any) -> None:
    from chaosali.lab import runner_image
    from chaosali.lab.cluster import Cluster

    cluster = Cluster.of(lab)
    sockets = cluster.containerd_sockets() if cluster else []
    if not sockets:
        raise runner_image.ImageError("the lab has no real worker to import the image into: chaosali lab up --nodes real")
    archive = runner_image.build()
    runner_image.import_into(sockets, archive)
    print(f"imported {runner_image.IMAGE} into {len(sockets)} worker(s): {archive}")


def _report(args: argparse.Namespace) -> int:
    if args.runs:
        return _report_runs(args)
    if not args.journals:
        return _failed(ActivityFailed("give journal files, or --run NAME --var-file V for a scheduled drill's run"))
    fmt = format_for(args.output, args.format)
    text = render(load_report(args.journals, Margin(args.margin, args.margin_seconds)), fmt)
    text = _plan_vs_run(text, fmt, args)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"chaosali: report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _report_runs(args: argparse.Namespace) -> int:
    """The report of scheduled runs: their journals read from the cluster into a private directory."""
    import tempfile

    from chaosali.schedule.runs import journal_of

    configuration = json.loads(args.var_file.read_text()).get("configuration", {}) if args.var_file else {}
    with tempfile.TemporaryDirectory(prefix="chaosali-runs-") as directory:
        for name in args.runs:
            path = Path(directory) / f"{name}.json"
            path.write_text(json.dumps(journal_of(name, args.namespace, configuration, None)), encoding="utf-8")
            args.journals.append(path)
        args.runs = []
        return _report(args)


def _runs(args: argparse.Namespace) -> int:
    from chaosali.schedule.runs import runs, table

    configuration = json.loads(args.var_file.read_text()).get("configuration", {})
    found = runs(args.namespace, configuration, None, args.schedule)
    sys.stdout.write(json.dumps(found, indent=2) + "\n" if args.format == "json" else table(found))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from chaosali.plan.build import load, make_plan  # Kubernetes only for the commands that need it
    from chaosali.plan.render import render as render_plan

    try:
        experiment, configuration, secrets = load(args.experiment, args.var_files, args.variables)
    except (ChaosException, ValueError) as error:  # chaoslib's loader and var parser
        return _failed(error)
    if args.rbac:
        return _rbac(args, experiment, configuration, secrets)
    plan = make_plan(experiment, configuration, secrets, preflight=args.preflight)
    text = render_plan(plan, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for reason in plan["reasons"]:
        print(f"chaosali plan: {reason}", file=sys.stderr)
    return 1 if plan["reasons"] else 0


def _rbac(args: argparse.Namespace, experiment: dict, configuration: dict, secrets: dict) -> int:
    from chaosali.plan.rbac import rbac, role_documents
    from chaosali.schedule.manifests import drill_name

    needed = rbac(experiment, configuration, secrets)
    if args.format == "json":
        text = json.dumps(needed, indent=2) + "\n"
    else:
        text = yaml.safe_dump_all(role_documents(needed["rules"], drill_name(args.experiment)), sort_keys=False)
    _write(text, args.output)
    for unknown in needed["unknown"]:
        print(f"chaosali plan: not granted: {unknown}", file=sys.stderr)
    return 1 if needed["unknown"] else 0


def _write(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _schedule(args: argparse.Namespace) -> int:
    from chaosali.schedule.build import apply, schedule
    from chaosali.schedule.manifests import Options

    options = Options(args.namespace, **({"image": args.image} if args.image else {}),
                      cron=None if args.now else args.cron, journal_claim=args.journal_claim)
    try:
        documents, configuration, secrets = schedule(args.experiment, args.var_files, args.variables, options)
    except (ChaosException, ValueError) as error:  # chaoslib's loader and var parser
        return _failed(error)
    if not args.apply:
        _write(yaml.safe_dump_all(documents, sort_keys=False), args.output)
        return 0
    run = apply(documents, configuration, secrets)[-1]  # each applied object is logged
    print(f"scheduled: {run['kind']} {args.namespace}/{run['name']}; its runs: chaosali runs --var-file "
          f"{args.var_files[0]} --namespace {args.namespace}")
    return 0


def _plan_vs_run(text: str, fmt: str, args: argparse.Namespace) -> str:
    """The report, with plan vs run for each journal that has a plan (``--plan``, or its own; a
    journal's own is left out of the formats that cannot show it)."""
    given = read_plan(args.plan) if args.plan else None
    if given is not None and fmt not in ("text", "markdown", "json"):
        raise ActivityFailed(f"plan vs run is shown in text, markdown or json, not {fmt}; drop --plan or change --format")
    found = []
    for path in args.journals if fmt in ("text", "markdown", "json") else []:
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # the report above already says why
            continue
        rows = compared(journal, given)
        if rows is not None:
            found.append((path, *rows))
    if not found:
        return text
    if fmt == "json":
        return json.dumps({**json.loads(text), "plan_vs_run": {str(p): rows for p, rows, _ in found}}, indent=2) + "\n"
    sections = [(f"{path}:\n" if len(found) > 1 else "") + render_versus(rows, fmt, left_out)
                for path, rows, left_out in found]
    return text.rstrip("\n") + "\n\n" + "\n".join(sections)


def _check(args: argparse.Namespace) -> int:
    variables = json.loads(args.var_file.read_text())
    configuration = variables.get("configuration", {})
    secrets = variables.get("secrets", {})
    if args.secrets not in secrets:
        return _failed(ActivityFailed(f"{args.var_file} has no secrets scope {args.secrets!r}; it has: "
                                      f"{', '.join(secrets) or 'none'}"))
    hosts = parse_hosts(args.hosts or configuration.get("lab_hosts") or [])
    settings = SSHSettings.from_chaos(configuration, secrets[args.secrets])
    report = check_hosts(hosts, fault_names(args.faults), configuration, settings)
    print(json.dumps(report, indent=2) if args.format == "json" else table(report), end="" if args.format == "text" else "\n")
    return 0 if report["ready"] else 1


def _cleanup(args: argparse.Namespace) -> int:
    if args.list:
        return _list_ledgers()
    # first, and on this machine only: no host's failure may keep a kubeconfig's credentials on disk
    removed, left = private.remove_orphans()
    for directory in removed:
        print(f"removed the private kubeconfig of a run that died: {directory}")
    for why in left:
        print(f"left {why}")
    variables = json.loads(args.var_file.read_text()) if args.var_file else {}
    configuration = variables.get("configuration", {})
    secrets = variables.get("secrets", {}).get("ssh", {})
    # a dead run's host faults are healed on the hosts this cleanup names only
    status = _heal_ledgers({**configuration, "lab_hosts": args.hosts or configuration.get("lab_hosts") or []}, secrets)
    status = max(status, _cleanup_hosts(args.hosts or configuration.get("lab_hosts"), configuration, secrets))
    return max(status, _cleanup_cluster(configuration))


def _list_ledgers() -> int:
    """What the runs' ledgers hold open, the runs that died first (oldest first), touching nothing."""
    runs = sorted(ledger.ledgers(), key=lambda found: found.alive)
    for found in runs:
        for record in found.open:
            print(f"{found.run} ({'running' if found.alive else 'dead'}): {record.summary()}")
    if not any(found.open for found in runs):
        print(f"no fault open in any run's ledger ({ledger.state_directory() / 'ledger'})")
    return 0


def _heal_ledgers(configuration: dict, secrets: dict) -> int:
    """Heal what every dead run left open, oldest run first, saying what became of each record: a
    record of other hosts or another cluster is left for a cleanup with that environment's var file."""
    status = 0
    for found in ledger.ledgers():
        if found.alive or not found.open:
            continue
        for record, outcome in found.heal(configuration, secrets):
            print(f"{found.run}: {record.kind} {record.id} on {', '.join(record.targets)}: {outcome}")
            status = max(status, 1 if outcome.startswith("not healed") else 0)
    return status



def _cleanup_hosts(listed: list | None, configuration: dict, secrets: dict) -> int:
    if not listed:
        print("no hosts given (--hosts, or lab_hosts in --var-file): no host was cleaned")
        return 0
    hosts = parse_hosts(listed)
    settings = SSHSettings.from_chaos(configuration, secrets)
    restored = faults.restore(hosts, settings)["restored"]
    # then what faults may leave without a marker (e.g. /run was lost), as the catalogue tells
    sweep = "".join(faults.host_script(name, {"CHAOSALI_ID_PREFIX": FAULT_ID_PREFIX})
                    for name in dict.fromkeys(entry.sweep for entry in CATALOGUE if entry.sweep))
    swept, errors = fan_out(hosts, lambda host: run_script(host, sweep, settings))
    for host in hosts:
        leftovers = swept.get(host, "").split()
        print(f"{host}: restored {restored.get(str(host)) or 'nothing'}"
              + (f"; removed orphan chains {leftovers}" if leftovers else ""))
    return 1 if errors else 0


def _cleanup_cluster(configuration: dict) -> int:
    """The cluster's markers: the cordon of a drain, the labels of kube-monkey's victims."""
    if "kubeconfig_path" not in configuration:
        print("no kubeconfig_path in --var-file's configuration: no cluster was cleaned")
        return 0
    # imported here: only this part of the command needs the Kubernetes client
    from chaosali.cluster.drain import uncordon
    from chaosali.kubemonkey.actions import unmark_left

    try:
        uncordoned = uncordon(None, configuration, None)["uncordoned"]
        unmarked = [f"{w['kind']} {w['namespace']}/{w['name']}" for w in unmark_left(configuration)]
    except ActivityFailed as error:
        return _failed(error)
    print(f"cluster: uncordoned {', '.join(uncordoned) or 'no node'}; removed the kube-monkey labels of "
          f"{', '.join(unmarked) or 'no workload'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
