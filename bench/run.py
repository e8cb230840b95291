"""Dockhand benchmark: the scan-and-match and confirm-disposition requests under load, on PostgreSQL.

    make bench                                   # defaults below
    .venv/bin/python bench/run.py --units 100000 --ledger 1000000 --clients 4 --duration 20 --workers 2

One run:
1. starts a throwaway PostgreSQL (or uses BENCH_DATABASE_URL, an empty database), migrates it
   and bulk-seeds a large, consistent world (bench/seed.py), then checks its consistency;
2. serves Dockhand under gunicorn (`--no-control-socket`, -w 2) with DOCKHAND_BENCH=1, which adds
   the Server-Timing, X-SQL-Statements and X-DB-Checkouts headers;
3. drives it from N client processes (one worker login each): a scan phase (parcel label, the
   items in it, close, next parcel) then a confirm phase (inspect a unit, confirm the rules'
   decision), each for --duration seconds after --warmup;
4. probes one client scanning into a 2-line and a 500-line RMA (statements and bytes must not grow);
5. serves bench/ceiling.py (a minimal Flask endpoint) under the same gunicorn settings and drives it
   the same way: the ceiling;
6. prints a table and writes bench/out/results.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import client as driver  # noqa: E402
from bench.cpu import Sampler  # noqa: E402
from bench.seed import check, seed  # noqa: E402

OUT = ROOT / "bench" / "out"
PG_TUNING = {  # for the throwaway server only: a bulk load and a working set that fit in memory
    "shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min", "wal_level": "minimal",
    "max_wal_senders": "0", "effective_cache_size": "4GB",
}
AIMS = {"p95_ms": 25.0, "scan_statements": 6, "response_bytes": 4096, "scan_rps": 300.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, default=100_000, help="return units in the seeded history (>= 100000 for the aims)")
    p.add_argument("--ledger", type=int, default=1_000_000, help="ledger rows in the seeded history")
    p.add_argument("--products", type=int, default=1000)
    p.add_argument("--clients", type=int, default=4, help="concurrent client processes (one worker login each)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds at the start of each phase")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (-w)")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (-k); gthread keeps connections alive")
    p.add_argument("--threads", type=int, default=1, help="gunicorn --threads (gthread)")
    p.add_argument("--parcels", type=int, default=600, help="parcels (10 items each) seeded per client for the scan phase")
    p.add_argument("--confirm-pool", type=int, default=2500, help="received units seeded per client for the confirm phase")
    p.add_argument("--probe-scans", type=int, default=10, help="scans into each of the 2- and 500-line RMAs")
    p.add_argument("--ceiling-duration", type=float, default=10.0)
    p.add_argument("--unix-socket", action="store_true",
                   help="the app reaches the throwaway PostgreSQL over its Unix socket instead of TCP (a one-box deployment)")
    p.add_argument("--pg-statements", type=int, default=0, metavar="N",
                   help="load pg_stat_statements and print the N statements PostgreSQL spent most time on during the "
                        "clients' phases (it costs some throughput: compare runs made with the same setting)")
    p.add_argument("--keep", action="store_true", help="leave the throwaway PostgreSQL running and print its URL")
    p.add_argument("--out", type=Path, default=OUT / "results.json")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(statements: bool = False) -> Any:
    """tests/pg.py's throwaway server, restarted once with settings for a bulk load
    (and with pg_stat_statements loaded when `statements`)."""
    from tests.pg import PG_BIN, ThrowawayPostgres, _as_postgres

    server = ThrowawayPostgres().start()
    try:
        psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-q"]
        tuning = dict(PG_TUNING, **({"shared_preload_libraries": "pg_stat_statements"} if statements else {}))
        for k, v in tuning.items():
            subprocess.run(_as_postgres([*psql, "-c", f"ALTER SYSTEM SET {k} = '{v}'"]), cwd="/", check=True,
                           capture_output=True)
        # -l: the restarted postmaster must not inherit our pipes (we would wait for it forever)
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-l", str(server.dir / "log"),
                                     "-w", "-m", "fast", "restart"]), cwd="/", check=True, capture_output=True, timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


def top_statements(url: str, limit: int, reset: bool = False) -> list[dict[str, Any]]:
    """pg_stat_statements' statements by total execution time (or, with `reset`, start counting afresh)."""
    import psycopg

    from bench.seed import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        if reset:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
            return []
        rows = conn.execute("SELECT calls, total_exec_time, rows, query FROM pg_stat_statements "
                            "WHERE query NOT LIKE '%%pg_stat_statements%%' ORDER BY total_exec_time DESC LIMIT %s",
                            (limit,)).fetchall()
    return [{"calls": c, "total_ms": round(t, 1), "mean_ms": round(t / max(c, 1), 3), "rows": r,
             "query": " ".join(q.split())} for c, t, r, q in rows]


def pg_settings(url: str) -> dict[str, str]:
    import psycopg

    from bench.seed import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level")
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def start_server(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, port: int, probe: str) -> Any:
    """Start a server process and wait (30 s at most) until `probe` answers 200 on `port`."""
    out = log.open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    proc.log_file = out  # type: ignore[attr-defined]
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on {probe}: see {log}")


def stop_server(proc: Any) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log_file.close()


class Gunicorn:
    """`gunicorn --no-control-socket` on a free 127.0.0.1 port, stopped with SIGTERM."""

    def __init__(self, target: str, args: argparse.Namespace, env: dict[str, str], log: Path, probe: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", str(args.workers), "-k", args.worker_class,
               "--threads", str(args.threads), "-b", f"127.0.0.1:{self.port}", "--chdir", str(ROOT), target]
        self.settings = " ".join(cmd[3:-1])
        self.proc = start_server(cmd, ROOT, env, log, self.port, probe)

    def stop(self) -> None:
        stop_server(self.proc)


# ---------------------------------------------------------------------------------------------- statistics


def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    i = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def summarize(records: list[driver.Record], seconds: float | None) -> dict[str, Any]:
    """Latency, throughput, statements and bytes of one kind of request."""
    if not records:
        return {"count": 0}
    client = sorted(r[2] for r in records)
    server = sorted(r[3] for r in records if r[3] >= 0)
    sql = [r[4] for r in records if r[4] >= 0]
    checkouts = [r[5] for r in records if r[5] >= 0]
    size = [r[6] for r in records]
    out: dict[str, Any] = {
        "count": len(records),
        "errors": sum(1 for r in records if not 200 <= r[1] < 300),
        "statuses": sorted({r[1] for r in records}),
        "client_ms": {"p50": pct(client, 50), "p95": pct(client, 95), "p99": pct(client, 99), "max": client[-1],
                      "mean": sum(client) / len(client)},
        "bytes": {"min": min(size), "max": max(size), "mean": sum(size) / len(size)},
    }
    if seconds:
        out["rps"] = len(records) / seconds
    if server:
        out["server_ms"] = {"p50": pct(server, 50), "p95": pct(server, 95), "p99": pct(server, 99), "max": server[-1],
                            "mean": sum(server) / len(server)}
    if sql:
        out["sql_statements"] = {"min": min(sql), "max": max(sql), "mean": sum(sql) / len(sql)}
    if checkouts:
        out["db_checkouts"] = {"min": min(checkouts), "max": max(checkouts), "mean": sum(checkouts) / len(checkouts)}
    return out


def in_window(phase: dict[str, Any]) -> list[driver.Record]:
    lo, hi = phase["window"]
    return [r for r in phase["records"] if lo <= r[7] <= hi]


# ---------------------------------------------------------------------------------------------- the run


def drive(target: Any, argsets: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Run one client process per argument tuple, in step (a barrier), and collect what they report."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(argsets))
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in argsets]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise RuntimeError(f"a client failed: {fatal[0]}")
    return sorted(results, key=lambda r: r["idx"])


def size_probe(port: int, world: Any, scans: int) -> dict[str, Any]:
    """One client scans into a 2-line and a 500-line RMA: statements, bytes and time must not grow."""
    c = driver.Client("127.0.0.1", port)
    c.login(world.size_user, world.password)
    out = {}
    for size, parcel in sorted(world.size_parcels.items()):
        c.records = []
        r = c.scan(parcel.number, kind="open")
        opened, card = r.record, r.body
        card_of = driver.PARCEL_RE.search(card)
        for i in range(scans):
            c.scan(parcel.items[i % len(parcel.items)], parcel=card_of.group(1) if card_of else None)
        scans_ = [rec for rec in c.records if rec[0] == "scan"]
        c.close_parcel(card)
        out[str(size)] = {"open": {"sql_statements": opened[4], "bytes": opened[6], "server_ms": opened[3]},
                          "scan": summarize(scans_, None)}
    out["errors"] = c.errors
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(), "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    t_run = time.perf_counter()
    results: dict[str, Any] = {"command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
                               "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "machine": machine()}
    url = os.environ.get("BENCH_DATABASE_URL")
    server = None
    photo_dir = Path(tempfile.mkdtemp(prefix="dockhand-bench-photos-"))
    try:
        if not url:
            print("PostgreSQL: starting a throwaway server ...", flush=True)
            server = start_postgres(statements=bool(args.pg_statements))
            url = server.url
        from app.migrate import upgrade

        t0 = time.perf_counter()
        upgrade(url)
        migrate_s = time.perf_counter() - t0
        print(f"Seeding {args.units:,} units / {args.ledger:,} ledger rows ...", flush=True)
        world = seed(url, units=args.units, ledger=args.ledger, clients=args.clients, parcels_per_client=args.parcels,
                     confirm_per_client=args.confirm_pool, products=args.products)
        t0 = time.perf_counter()
        checks = check(url)
        check_s = time.perf_counter() - t0
        print(f"Seeded in {world.seconds:.1f} s (migrate {migrate_s:.1f} s, checks {check_s:.1f} s): "
              + ", ".join(f"{k} {v:,}" for k, v in world.counts.items()), flush=True)
        print(f"Consistency: {checks}", flush=True)
        results["database"] = {"settings": pg_settings(url), "throwaway": server is not None}
        results["seed"] = {"seconds": world.seconds, "migrate_seconds": migrate_s, "counts": world.counts, "checks": checks,
                           "steps": {k: round(v, 2) for k, v in world.steps if v >= 0.1}}
        if any(checks.values()):
            raise SystemExit(f"the seeded database is inconsistent: {checks}")

        app_url = url
        if args.unix_socket and server is not None:
            app_url = f"postgresql+psycopg://postgres@/dockhand_test?host={server.dir}&port={server.port}"
        env = dict(os.environ, DATABASE_URL=app_url, SECRET_KEY=secrets.token_hex(32), DOCKHAND_BENCH="1",
                   DOCKHAND_PHOTO_DIR=str(photo_dir))
        app_server = Gunicorn("wsgi:app", args, env, OUT / "gunicorn-app.log", "/health")
        results["gunicorn"] = app_server.settings
        try:
            print(f"Dockhand under gunicorn ({app_server.settings}); {args.clients} clients, "
                  f"{args.warmup:g} s warm-up + {args.duration:g} s per phase ...", flush=True)
            if args.pg_statements:
                top_statements(url, 0, reset=True)
            with Sampler(app_server.proc.pid) as cpu:
                per_client = drive(driver.client_main, [
                    (i, "127.0.0.1", app_server.port, world.users[i], world.password, world.parcels[i],
                     world.confirm_units[i], args.warmup, args.duration) for i in range(args.clients)])
            if args.pg_statements:
                results["pg_statements"] = top_statements(url, args.pg_statements)
            print("Size probe (one client, RMAs of 2 and 500 lines) ...", flush=True)
            probe = size_probe(app_server.port, world, args.probe_scans)
        finally:
            app_server.stop()
        phases: dict[str, Any] = {}
        for phase in ("scan", "confirm"):
            recs = [r for pc in per_client for r in in_window(pc[phase])]
            kinds = sorted({r[0] for r in recs})
            phases[phase] = {k: summarize([r for r in recs if r[0] == k], args.duration) for k in kinds}
            window = per_client[0][phase]["window"]
            used = cpu.between(*window)
            if used:  # CPU ms per request of the phase, by process group, over the measured window
                n = sum(1 for r in recs if window[0] <= r[7] <= window[1])
                phases[phase]["cpu"] = {"requests": n, "seconds": round(used["seconds"], 2),
                                        **{k: round(used[k] * 1000 / max(n, 1), 2) for k in ("app", "postgres", "clients")},
                                        "busy_cores": round(sum(used[k] for k in ("app", "postgres", "clients")) / used["seconds"], 2)}
            phases[phase]["all"] = summarize(recs, args.duration)
        results["phases"] = phases
        results["size_probe"] = probe
        results["client_errors"] = [e for pc in per_client for e in pc["errors"]] + probe["errors"]

        print("Ceiling: bench/ceiling.py under the same gunicorn settings ...", flush=True)
        ceiling_server = Gunicorn("bench.ceiling:app", args, dict(os.environ), OUT / "gunicorn-ceiling.log", "/")
        try:
            ceil = drive(driver.ceiling_main, [(i, "127.0.0.1", ceiling_server.port, min(args.warmup, 2.0), args.ceiling_duration)
                                           for i in range(args.clients)])
        finally:
            ceiling_server.stop()
        results["ceiling"] = summarize([r for pc in ceil for r in in_window(pc["ceiling"])], args.ceiling_duration)
        results["machine"]["load_avg_at_end"] = os.getloadavg()
        results["aims"] = aims(results)
        results["run_seconds"] = time.perf_counter() - t_run
        report(results)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nWrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
              f"(whole run {results['run_seconds']:.0f} s)")
        return 0
    finally:
        shutil.rmtree(photo_dir, ignore_errors=True)
        if server is not None:
            if args.keep:
                server.keep()
                print(f"PostgreSQL left running: {url} (stop: pg_ctl -D {server.data} stop)")
            else:
                server.stop()


def aims(results: dict[str, Any]) -> dict[str, Any]:
    scan = results["phases"]["scan"].get("scan", {})
    confirm = results["phases"]["confirm"].get("confirm", {})
    probe = results["size_probe"]
    scan_sql = max([scan.get("sql_statements", {}).get("max", 0)]
                   + [probe[s]["scan"].get("sql_statements", {}).get("max", 0) for s in ("2", "500")])
    sizes = [scan.get("bytes", {}).get("max", 0), confirm.get("bytes", {}).get("max", 0)]
    sizes += [probe[s]["scan"].get("bytes", {}).get("max", 0) for s in ("2", "500")]
    p95 = {"scan": scan.get("client_ms", {}).get("p95"), "confirm": confirm.get("client_ms", {}).get("p95")}
    return {
        "p95_under_25ms_client": {"value": p95, "ok": all(v is not None and v < AIMS["p95_ms"] for v in p95.values())},
        "p95_under_25ms_server": {"value": {"scan": scan.get("server_ms", {}).get("p95"),
                                            "confirm": confirm.get("server_ms", {}).get("p95")},
                                  "ok": all((x.get("server_ms", {}).get("p95") or 1e9) < AIMS["p95_ms"] for x in (scan, confirm))},
        "scan_statements_at_most_6": {"value": scan_sql, "ok": scan_sql <= AIMS["scan_statements"]},
        "responses_under_4KB": {"value": max(sizes), "ok": max(sizes) < AIMS["response_bytes"]},
        "scan_rps_at_least_300": {"value": scan.get("rps"), "ok": (scan.get("rps") or 0) >= AIMS["scan_rps"]},
        "no_errors": {"value": sum(x.get("errors", 0) for ph in results["phases"].values() for x in ph.values()
                                   if x is not ph.get("all")) + len(results["client_errors"]),
                      "ok": not any(x.get("errors", 0) for ph in results["phases"].values() for x in ph.values())
                      and not results["client_errors"]},
    }


def report(r: dict[str, Any]) -> None:
    def f(x: Any, fmt: str = ".1f") -> str:
        return "-" if x is None else format(x, fmt)

    print()
    print(f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['memory']}; load avg at start "
          f"{', '.join(f'{x:.1f}' for x in r['machine']['load_avg_at_start'])}")
    print(f"PostgreSQL {r['database']['settings']['server_version']} (fsync={r['database']['settings']['fsync']}, "
          f"synchronous_commit={r['database']['settings']['synchronous_commit']}); gunicorn {r['gunicorn']}")
    c = r["seed"]["counts"]
    print(f"Seed: {c['return_units']:,} units, {c['ledger_entries']:,} ledger rows, {c['audit_entries']:,} audit, "
          f"{c['outbox_events']:,} outbox, {c['rma_lines']:,} RMA lines in {r['seed']['seconds']:.1f} s; checks "
          f"{'ok' if not any(r['seed']['checks'].values()) else r['seed']['checks']}")
    print()
    head = f"{'request':<22}{'n':>6}{'req/s':>8}{'client p50':>11}{'p95':>7}{'server p50':>11}{'p95':>7}" \
           f"{'SQL min/max/mean':>18}{'bytes max':>10}{'err':>5}"
    print(head)
    print("-" * len(head))

    def row(label: str, s: dict[str, Any]) -> None:
        if not s.get("count"):
            return
        sql = s.get("sql_statements")
        sqls = f"{sql['min']}/{sql['max']}/{sql['mean']:.1f}" if sql else "-"
        print(f"{label:<22}{s['count']:>6}{f(s.get('rps')):>8}{f(s['client_ms']['p50']):>11}{f(s['client_ms']['p95']):>7}"
              f"{f(s.get('server_ms', {}).get('p50')):>11}{f(s.get('server_ms', {}).get('p95')):>7}{sqls:>18}"
              f"{s['bytes']['max']:>10}{s['errors']:>5}")

    for phase, kinds in r["phases"].items():
        for k in ("open", "scan", "close", "inspect", "confirm"):
            if k in kinds:
                row(f"{phase}: {k}", kinds[k])
    for phase, kinds in r["phases"].items():
        c = kinds.get("cpu")
        if c:
            print(f"  CPU per request, {phase} phase ({c['requests']} requests): app {c['app']:.2f} ms, postgres "
                  f"{c['postgres']:.2f} ms, clients {c['clients']:.2f} ms; {c['busy_cores']:.2f} of the cores busy")
    for size in ("2", "500"):
        row(f"probe: scan, RMA {size}", r["size_probe"][size]["scan"])
        o = r["size_probe"][size]["open"]
        print(f"{'probe: open, RMA ' + size:<22}{'':>6}{'':>8}{'':>11}{'':>7}{f(o['server_ms']):>11}{'':>7}"
              f"{o['sql_statements']:>18}{o['bytes']:>10}")
    row("ceiling: GET /", r["ceiling"])
    if r.get("pg_statements"):
        print("\nPostgreSQL's time by statement, both phases (pg_stat_statements):")
        print(f"{'total ms':>10}{'calls':>8}{'mean ms':>9}  query")
        for st in r["pg_statements"]:
            print(f"{st['total_ms']:>10.1f}{st['calls']:>8}{st['mean_ms']:>9.3f}  {st['query'][:110]}")
    print()
    for name, a in r["aims"].items():
        print(f"  [{'x' if a['ok'] else ' '}] {name}: {a['value']}")
    for e in r["client_errors"][:5]:
        print(f"  error: {e}")


if __name__ == "__main__":
    sys.exit(main())
