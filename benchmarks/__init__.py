"""Benchmarks that print figures and save them under benchmarks/results/ (run, not tested)."""
