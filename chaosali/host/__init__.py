"""Host faults over SSH: network, system and kubelet faults that always heal."""
