"""Each host action marks its faults with the kind FAULT_KINDS says (restores sweep by kind)."""

import pytest

from chaosali.host import network, system
from chaosali.host.actions import FAULT_KINDS

BUILT = {
    "cut_network": lambda: network.drop_fault(FAULT_KINDS["cut_network"], 10),
    "lose_packets": lambda: network.drop_fault(FAULT_KINDS["lose_packets"], 10, 50),
    "limit_bandwidth": lambda: network.bandwidth_fault(10, "1mbit", "32kb", "400ms", None),
    "delay_network": lambda: network.delay_fault(10, "100ms", None, None),
    "reconfigure_kubelet": lambda: system.kubelet_fault(10, {}, apiserver="https://127.0.0.1:6443"),
    "stop_service": lambda: system.service_fault(10, {}, "kubelet"),
    "stress_cpu": lambda: system.stress_cpu_fault(10, 1),
    "stress_memory": lambda: system.stress_memory_fault(10, 64),
}


@pytest.mark.parametrize("action", sorted(FAULT_KINDS))
def test_the_fault_an_action_builds_has_the_published_kind(action):
    assert BUILT[action]().kind == FAULT_KINDS[action]
