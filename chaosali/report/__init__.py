"""Reading journals: the story of a run (and, to come, HTML/Markdown reports with FMEA)."""
