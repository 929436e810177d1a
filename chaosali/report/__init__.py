"""Reading journals: the story of a run (``story``), its figures (``figures``: timeline, faults,
outages, measured vs expected recovery, the impact recording, expectations, the resilience
score), FMEA validation (``fmea``), secret masking (``redact``)
and the ``chaosali report`` formats (``render``: text, Markdown, JSON; ``render_html``; ``junit``)."""
