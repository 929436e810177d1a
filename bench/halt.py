"""Benchmark: a stop condition breaks while a network cut is on 1 host and on 16 hosts; how long from
the breaking sample to every fault healed, and what the verified revert costs per host, in one run.

Each round cuts a port on the hosts (a real cut_network, as a drill's method does), then makes a
stop condition break: a probe condition (a Chaos Toolkit probe, checked every 0.1 s) whose
tolerance fails once a flag file exists. Printed, as medians over the rounds:

- "sample -> healed": from the check that saw the breach to every fault restored (aim: <= 1 s for
  1 host, within the fan-out floor + 0.5 s for 16);
- "harm -> healed": from the flag's creation, so with the check's interval;
- the floor: the same fan-out running only `true` over SSH, one session per host (the 16 lab hosts'
  sshd share the controller's cores, so their sessions alone cost that much);
- the revert check after the restore: seconds for all hosts at once, and per host (one SSH session each).

Needs root: it brings up its own lab (cshalt, 10.223.0.0/24; with --quick csqhalt, 10.238.0.0/24).

    python bench/halt.py [--hosts 16] [--rounds 5]
    python bench/halt.py --quick      # 4 hosts, 1 round
"""

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from _cli import parse

from chaosali.core import memory
from chaosali.core.fanout import fan_out
from chaosali.host import faults
from chaosali.host.actions import cut_network
from chaosali.host.ssh import SSHSettings, parse_hosts, run_script
from chaosali.lab.hosts import Lab
from chaosali.safety.conditions import conditions
from chaosali.safety.halt import Watch


def halt_round(targets: list, chaos: dict, flag: Path) -> tuple[float, float]:
    """(sample -> healed, harm -> healed) seconds for one halt of a cut on ``targets``."""
    cut_network(targets, duration=60, ports=[9], **chaos)
    probe = {"type": "probe", "name": "no-harm", "tolerance": False,
             "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": str(flag)}}}
    watch = Watch(conditions([{"name": "no harm", "probe": probe, "interval": 0.1}]))
    watch.start()
    time.sleep(random.uniform(0.2, 0.4))  # the harm at any moment of the check's interval
    harm = time.time()
    flag.touch()
    try:
        time.sleep(30)  # the halt interrupts this main thread, as it interrupts chaos run's
    except KeyboardInterrupt:
        pass
    watch.stop()
    flag.unlink()
    halt = watch.halt
    assert halt and all(entry["healed"] for entry in halt["healed"]), halt
    healed_at = dt.datetime.fromisoformat(halt["healed_at"]).timestamp()
    return halt["heal_seconds"], healed_at - harm


def revert_check(count: int) -> float:
    """Seconds for the revert check of the run's faults on ``count`` hosts; it must find nothing."""
    began = time.perf_counter()
    places = faults.left_behind()
    took = time.perf_counter() - began
    assert len(places) == count and not any(place["left"] for place in places), places
    return took


def ssh_only(targets: list, chaos: dict) -> float:
    settings, hosts = SSHSettings.from_chaos(chaos["configuration"], chaos["secrets"]), parse_hosts(targets)
    started = time.perf_counter()
    fan_out(hosts, lambda host: run_script(host, "true", settings))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parse(parser, {"hosts": 4, "rounds": 1},
                 labs=({"name": "cshalt", "subnet": "10.223.0.0/24"}, {"name": "csqhalt", "subnet": "10.238.0.0/24"}))

    lab = Lab(**args.lab)
    lab.down()  # whatever a killed run left behind
    lab.up(hosts=args.hosts)
    counts = (1, args.hosts)
    try:
        variables = json.loads(lab.vars_path.read_text())
        chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
        addresses = [host.address for host in lab.hosts]
        flag = Path(tempfile.mkdtemp()) / "harm"
        timings: dict[str, list[float]] = {name: [] for count in counts for name in
                                           (f"sample {count}", f"harm {count}", f"floor {count}", f"revert {count}")}
        for _ in range(args.rounds):  # interleaved, so that machine noise hits every variant alike
            for count in counts:
                sample, harm = halt_round(addresses[:count], chaos, flag)
                timings[f"sample {count}"].append(sample)
                timings[f"harm {count}"].append(harm)
                timings[f"revert {count}"].append(revert_check(count))
                timings[f"floor {count}"].append(ssh_only(addresses[:count], chaos))
                memory.forget()
        median = {name: statistics.median(values) for name, values in timings.items()}
        for count in counts:
            healed, floor, revert = (median[f"{what} {count}"] for what in ("sample", "floor", "revert"))
            print(f"{count:>2} host(s): sample -> healed {healed:.3f} s, fan-out floor {floor:.3f} s, healed / floor "
                  f"x{healed / floor:.2f}; harm -> healed {median[f'harm {count}']:.3f} s; revert check {revert:.3f} s "
                  f"({revert / count:.3f} s per host, 1 SSH session each)")
        most = counts[-1]
        print(f"aims: 1 host sample -> healed {median['sample 1']:.3f} s <= 1 s: {median['sample 1'] <= 1}; "
              f"{most} hosts {median[f'sample {most}']:.3f} s <= floor + 0.5 = {median[f'floor {most}'] + 0.5:.3f} s: "
              f"{median[f'sample {most}'] <= median[f'floor {most}'] + 0.5}  (medians of {args.rounds} rounds)")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
