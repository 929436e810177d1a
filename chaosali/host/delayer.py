"""The NFQUEUE delayer: what ``delay_network`` runs on a host whose kernel has no ``sch_netem``.

Not run by the controller: the fault writes this file into its marker directory on the host and
starts it there with the host's Python (configuration ``delay_python``, which needs the
``fnfqueue`` package), before the iptables rules that send the host's egress packets to its queue
(``network.delay_fault``). It holds each packet for the delay (plus or minus the jitter) and then
lets it go on. Whatever happens, the host keeps its traffic: the rules bypass a queue nobody
listens to (``--queue-bypass``), the kernel lets packets through when the queue is full (fail
open), and on SIGTERM, or once ``--seconds`` have passed (its own dead-man timer, beside the
fault's), it releases every packet it holds at once and exits.

    python3 delayer.py --queue 3000 --delay 0.1 [--jitter 0.01] --seconds 65
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import signal
import threading
import time
from typing import Any

# packets held at once, at most: past it the kernel lets new ones through undelayed (fail open)
QUEUE_LENGTH = 10000


class Held:
    """Packets held until they are due, released in the order they fall due by one thread."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False

    def hold(self, packet: Any, due: float) -> None:
        with self._changed:
            if self._stopping:
                packet.accept()
                return
            heapq.heappush(self._due, (due, next(self._order), packet))
            self._changed.notify()

    def release_when_due(self) -> None:
        with self._changed:
            while not (self._stopping and not self._due):
                if self._stopping or (self._due and self._due[0][0] <= time.monotonic()):
                    _, _, packet = heapq.heappop(self._due)
                    packet.accept()
                else:
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)

    def release_all(self) -> None:
        """Let every packet held go at once (the thread releasing them ends when they are gone)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue", type=int, required=True, help="the NFQUEUE number the fault's rules send to")
    parser.add_argument("--delay", type=float, required=True, help="seconds each packet is held")
    parser.add_argument("--jitter", type=float, default=0.0, help="seconds the delay varies by, uniformly")
    parser.add_argument("--seconds", type=float, required=True, help="when to let everything go and exit")
    args = parser.parse_args(argv)
    import fnfqueue  # on the host only: the controller never imports it

    connection = fnfqueue.Connection(alloc_size=64, chunk_size=16, packet_size=4096)
    queue = connection.bind(args.queue)
    queue.set_mode(0, fnfqueue.COPY_META)  # the verdict needs the packet's id only, not its bytes
    queue.set_maxlen(QUEUE_LENGTH)
    queue.fail_open = True
    held = Held()
    releaser = threading.Thread(target=held.release_when_due)
    releaser.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def end() -> None:
        stop.wait(args.seconds)
        stop.set()
        held.release_all()
        releaser.join()
        connection.close()  # ends the loop below

    threading.Thread(target=end, daemon=True).start()
    while not stop.is_set():
        try:
            for packet in connection:
                held.hold(packet, time.monotonic() + max(0.0, args.delay + random.uniform(-args.jitter, args.jitter)))
        except fnfqueue.BufferOverflowException:  # the socket overflowed: the kernel re-sends, read on
            connection.reset()


if __name__ == "__main__":
    main()
