"""One-off GPU diagnostics whose findings are recorded in benchmarks/README.md."""
