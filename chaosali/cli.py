"""The ``chaosali`` command: the local lab, cleanup after a crashed drill, and journal reports."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from chaosali.cluster.kubeconfig import remove_orphans
from chaosali.host import faults
from chaosali.host.network import sweep_commands
from chaosali.host.ssh import SSHSettings, fan_out, parse_hosts, run_script
from chaosali.lab.hosts import DEFAULT_STATE_DIR, Lab, LabError
from chaosali.report.render import FORMATS, format_for, load_runs, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaosali", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    lab = commands.add_parser("lab", help="the local lab of SSH hosts (network namespaces)")
    lab.add_argument("action", choices=["up", "down", "status"])
    lab.add_argument("--hosts", type=int, default=0, help="plain hosts, without a cluster (up)")
    lab.add_argument("--masters", type=int, default=1, help="control-plane hosts, 1 or 3 (up; default 1)")
    lab.add_argument("--workers", type=int, default=2, help="worker hosts (up; default 2)")
    lab.add_argument("--name", default="chaosali", help="prefix of everything the lab creates")
    lab.add_argument("--subnet", default="10.213.0.0/24", help="the lab's address range (up)")
    lab.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)

    cleanup = commands.add_parser(
        "cleanup", help="remove every chaosali fault (markers, rules, qdiscs) from hosts, even after a crash"
    )
    cleanup.add_argument("--var-file", type=Path, required=True,
                         help="a chaos --var-file with ssh secrets (and lab_hosts when --hosts is not given)")
    cleanup.add_argument("--hosts", nargs="+", help="[user@]address[:port] of each host")

    report = commands.add_parser(
        "report", help="tell what chaos runs did, from their journals: story, FMEA, timeline, recovery time"
    )
    report.add_argument("journals", type=Path, nargs="+", metavar="JOURNAL",
                        help="journal files of `chaos run`; several give a campaign summary first")
    report.add_argument("-o", "--output", type=Path, help="write the report to this file (default: stdout)")
    report.add_argument("--format", choices=FORMATS,
                        help="text (the story; default), html (one self-contained page), markdown, json "
                             "(the figures); default: from the -o suffix (.html, .md, .json), else text")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    try:
        if args.command == "lab":
            return _lab(args)
        if args.command == "report":
            return _report(args)
        return _cleanup(args)
    except (LabError, ActivityFailed) as error:
        print(f"chaosali: {error}", file=sys.stderr)
        return 1


def _lab(args: argparse.Namespace) -> int:
    lab = Lab.load(args.name, args.state_dir)
    if args.action == "up":
        lab.subnet = lab.subnet if lab.hosts else args.subnet
        if args.hosts:
            lab.up(hosts=args.hosts)
        else:
            lab.up(masters=args.masters, workers=args.workers)
        print(f"lab {lab.name} is up: {len(lab.hosts)} hosts; chaos run --var-file {lab.vars_path} EXPERIMENT")
    elif args.action == "down":
        lab.down()
        print(f"lab {lab.name} is down")
    else:
        print(json.dumps(lab.status(), indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    text = render(load_runs(args.journals), format_for(args.output, args.format))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"chaosali: report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    variables = json.loads(args.var_file.read_text())
    configuration = variables.get("configuration", {})
    secrets = variables.get("secrets", {}).get("ssh", {})
    hosts = parse_hosts(args.hosts or configuration.get("lab_hosts") or [])
    settings = SSHSettings.from_chaos(configuration, secrets)
    restored = faults.restore(hosts, settings)["restored"]
    swept, errors = fan_out(hosts, lambda host: run_script(host, "\n".join(sweep_commands()), settings))
    for host in hosts:
        leftovers = swept.get(host, "").split()
        print(f"{host}: restored {restored.get(str(host)) or 'nothing'}"
              + (f"; removed orphan chains {leftovers}" if leftovers else ""))
    for directory in remove_orphans():
        print(f"removed the private kubeconfig of a run that died: {directory}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
