"""Where the CPU goes during a phase: a sampler of /proc that sums the CPU time (user + system) of
the gunicorn workers, of PostgreSQL's processes and of the benchmark's client processes."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, ppid, cpu seconds) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK  # ppid, utime, stime


def snapshot(app_pid: int, bench_pid: int) -> dict[str, float]:
    """CPU seconds so far of each group: the app server's workers (children of the gunicorn
    master), postgres (every `postgres` process), the clients (children of the benchmark)."""
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                procs[int(entry.name)] = st
    out = {"app": 0.0, "postgres": 0.0, "clients": 0.0}
    for pid, (comm, ppid, cpu) in procs.items():
        if ppid == app_pid or pid == app_pid:
            out["app"] += cpu
        elif comm == "postgres":
            out["postgres"] += cpu
        elif ppid == bench_pid:
            out["clients"] += cpu
    return out


class Sampler:
    """Snapshots every `interval` seconds in a thread; `between(t0, t1)` gives the CPU seconds each
    group used in that window (from the nearest samples)."""

    def __init__(self, app_pid: int, interval: float = 0.5) -> None:
        self.app_pid, self.bench_pid, self.interval = app_pid, os.getpid(), interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), snapshot(self.app_pid, self.bench_pid)))
            self._stop.wait(self.interval)

    def between(self, t0: float, t1: float) -> dict[str, float]:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return {}
        (a_t, a), (b_t, b) = inside[0], inside[-1]
        return {"seconds": b_t - a_t, **{k: b[k] - a[k] for k in a}}
