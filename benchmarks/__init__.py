"""Benchmarks that print figures and save them under benchmarks/results/ (run, not tested)."""

import json
from pathlib import Path
from typing import Any


def save_results(results: dict[str, Any], out: Path, what: str) -> Path:
    """Print the figures and write them to `<out>/<card>-<date>-<what>.json`."""
    print(json.dumps(results, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{str(results['card']).replace(' ', '-').lower()}-{results['date']}-{what}.json"
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return path
