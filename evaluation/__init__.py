"""Evaluation: metrics (scorer), reports (JSON + Markdown) and benchmarks."""
