"""Benchmarks: `python -m bench.<name>`; each prints a table and writes JSON under var/bench/."""
