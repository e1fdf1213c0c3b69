"""Time from process start to ready (`/readyz` 200), cold (an empty cache folder) and warm (the same folder again).

    python -m benchmarks.startup [--runs 3] [--repo PATH --what startup-before]

Starts `python -m app` as `make serve` does, with `KIOSK_CACHE_DIR` in a new temporary folder: the first start
of each run fits and embeds everything (cold), the second finds it all cached (warm). Prints the median and
every run's seconds to ready, wall clock and the server's CPU time (user + system, its child processes'
included: less sensitive than the wall clock to what else runs on the machine), with the load average around
the runs; saves benchmarks/results/cpu-<date>-startup.json. `--repo` starts another checkout's app (before
and after figures measured back to back); the results go to this one's folder.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import save_results
from benchmarks.service import free_port

TARGET_READY_S = 20


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process, all its threads and its ended children (Linux' /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def time_to_ready(repo: Path, cache_dir: Path, log: Path) -> tuple[float, float | None]:
    """Seconds from starting the server to its first 200 on /readyz, and the CPU seconds it had used by then."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "KIOSK_CACHE_DIR": str(cache_dir),
        "KIOSK_DB_PATH": str(cache_dir.parent / "bench.sqlite3"),
    }
    url = f"http://127.0.0.1:{port}/readyz"
    start = time.monotonic()
    with log.open("ab") as out:
        server = subprocess.Popen([sys.executable, "-m", "app"], cwd=repo, env=env, stdout=out, stderr=out)
    # One client for every probe: `httpx.get` builds a new one (and its TLS context) each time, ~25 ms of CPU
    # that would be taken from the server 20 times a second.
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        return time.monotonic() - start, cpu_seconds(server.pid)
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() - start > 600:
                    raise SystemExit(f"the server did not start: see {log}")
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(60)


def summary(times: list[tuple[float, float | None]]) -> dict[str, object]:
    walls = [w for w, _ in times]
    cpus = [c for _, c in times if c is not None]
    return {
        "ready_s": round(statistics.median(walls), 1),
        "ready_s_runs": [round(w, 1) for w in walls],
        "cpu_s": round(statistics.median(cpus), 1) if cpus else None,
        "cpu_s_runs": [round(c, 1) for c in cpus],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold + warm starts, each from a new empty cache")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout whose app is started")
    parser.add_argument("--what", default="startup", help="the results file's last word (e.g. startup-before)")
    args = parser.parse_args(argv)
    cold, warm = [], []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        log = Path(tmp) / "server.log"
        for run in range(args.runs):
            cache_dir = Path(tmp) / f"run-{run}" / "cache"
            cold.append(time_to_ready(args.repo.resolve(), cache_dir, log))
            warm.append(time_to_ready(args.repo.resolve(), cache_dir, log))
            print(f"run {run + 1}: cold {cold[-1][0]:.1f} s, warm {warm[-1][0]:.1f} s", flush=True)
    results: dict[str, object] = {
        "card": "cpu",
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "repo": str(args.repo.resolve()),
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cold": summary(cold),
        "warm": summary(warm),
        "target_ready_s": TARGET_READY_S,
    }
    save_results(results, Path("benchmarks/results"), args.what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
