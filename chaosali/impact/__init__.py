"""What a drill did to the workloads: a recorder that runs beside the experiment (a control),
the measures derived from its recording, and the ``impact_within`` probe that judges them."""
