"""Helpers shared by scripts/sweep.py and scripts/compare.py.

- configs: JSON config loading (extends), dotted key paths, flattening.
- naming:  readable, filesystem-safe run and group names from config values.
- spec:    sweep SPEC files: validation and expansion into a run list.
- rundir:  reading run directories (metrics.jsonl, summary.json) and their status.
- stats:   EMA smoothing, the loss-spike rule, group statistics, Welch's t-test.
- plots, report: the comparison report (matplotlib figures, HTML, CSV, Markdown).
"""
