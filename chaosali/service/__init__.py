"""Service probes: is an HTTP(S) service available, and how many real servers behind a VIP answer."""
