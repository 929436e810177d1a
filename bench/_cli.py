"""The command line every benchmark shares (not a benchmark itself): its ``--quick`` option.

A quick run goes the whole path of the full one with small sizes (a few hosts, nodes and pods, a
short window, one round) and prints the same lines: tests/test_bench.py runs every benchmark so,
in CI, so that none can rot unnoticed. Its figures are not judged; a full run's are.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

__all__ = ["parse"]


Lab = dict[str, str]  # Lab(**lab): its name and subnet


def parse(parser: argparse.ArgumentParser, quick: dict[str, Any],
          labs: tuple[Lab, Lab] | None = None) -> argparse.Namespace:
    """The command line, with ``quick``'s values in place of the defaults under ``--quick``
    (options given on the command line still win).

    ``labs``: the lab of a full run and the lab of a quick run, as ``args.lab``; apart, so that
    CI's quick run never takes down the lab of a full run going on at the same time.

    Also turns SIGTERM into an exit, so that a benchmark stopped that way (a CI timeout) still
    runs its ``finally`` blocks and brings its lab down."""
    shown = ", ".join(f"--{name.replace('_', '-')} {_shown(value)}" for name, value in quick.items())
    parser.add_argument("--quick", action="store_true",
                        help=f"a small run of the whole path, in well under a minute (CI runs it): {shown}")
    full_lab, quick_lab = labs or (None, None)
    parser.set_defaults(lab=full_lab)
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**quick, lab=quick_lab)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return parser.parse_args()


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
