"""Profile a request in-process (no HTTP, no gunicorn): where its CPU goes. The item scan by default.

    .venv/bin/python bench/profile_scan.py                 # cProfile, top functions by own time
    .venv/bin/python bench/profile_scan.py --sort cumulative --top 60
    .venv/bin/python bench/profile_scan.py --no-profile    # just ms per request and statements per request
    .venv/bin/python bench/profile_scan.py --flow confirm --no-profile --statements
    .venv/bin/python bench/profile_scan.py --instructions --parcels 15   # CPU instructions per parcel (valgrind)
    .venv/bin/python bench/profile_scan.py --instructions --parcels 15 --flow open   # ... per open request

It starts a throwaway PostgreSQL, seeds a small database with bench/seed.py, signs a worker in
through Flask's test client and drives the requests the way bench/client.py does: parcels (open,
10 scans, close), or units (inspect, then confirm the disposition). Only the chosen request is
profiled and timed. It also reports the CPU its PostgreSQL backend used per request (from /proc)
and how many statements are prepared on the app's connection at the end.

With --instructions it runs itself under valgrind's callgrind and counts the CPU instructions
this process executes after the warm-up: per parcel (open, 10 scans, close) for --flow scan, per
unit (inspect and confirm) for --flow confirm, per request for open, close and inspect. The machine is shared and its speed drifts, so CPU times of two code versions are
hard to compare; instruction counts are the same from run to run within a fraction of a percent.
They leave out the PostgreSQL server's work.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PARCEL_ID_RE = re.compile(r'data-parcel-id="(\d+)"')
PARCEL_RE = re.compile(r'data-parcel="([0-9:]+)"')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flow", choices=("scan", "open", "close", "inspect", "confirm"), default="scan",
                   help="the request to measure: the item scan, or the parcel's open or close (parcels of 10 items: open, "
                        "scans, close), or inspect "
                        "or confirm-disposition (each unit is inspected, then its disposition confirmed)")
    p.add_argument("--parcels", type=int, default=60, help="parcels of 10 items to scan (the first 5 warm up)")
    p.add_argument("--units", type=int, default=300, help="units to inspect and confirm (the first 10 warm up)")
    p.add_argument("--sort", default="tottime")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--statements", action="store_true", help="also print each statement's mean wall time (ms) per measured request")
    p.add_argument("--unix-socket", action="store_true", help="the app talks to PostgreSQL over its Unix socket, not TCP")
    p.add_argument("--instructions", action="store_true",
                   help="count CPU instructions per parcel (scan), per unit (confirm) or per request (open, close, inspect) under "
                        "valgrind's callgrind (slow: use --parcels 15 or --units 30)")
    args = p.parse_args()
    if args.instructions and "DOCKHAND_CALLGRIND" not in os.environ:
        return _count_instructions(args)
    counting = "DOCKHAND_CALLGRIND" in os.environ
    # --flow scan and confirm count whole parcels and units; open, close and inspect only their own requests
    whole = counting and args.flow in ("scan", "confirm")
    if counting:
        args.no_profile = True

    from bench.run import start_postgres
    from bench.seed import seed

    server = start_postgres()
    try:
        from app.migrate import upgrade

        upgrade(server.url)
        world = seed(server.url, units=6000, ledger=20000, clients=1, parcels_per_client=args.parcels,
                     confirm_per_client=args.units, products=300, verbose=False)
        os.environ["DOCKHAND_BENCH"] = "1"
        from app import create_app

        url = (f"postgresql+psycopg://postgres@/dockhand_test?host={server.dir}&port={server.port}"
               if args.unix_socket else server.url)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "profile", "BENCH_INSTRUMENT": True,
                          "PHOTO_DIR": "/tmp/dockhand-profile-photos"})
        client = app.test_client()
        page = client.get("/login")
        token = CSRF_RE.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        r = client.post("/login", data={"csrf_token": token, "username": world.users[0], "password": world.password})
        assert r.status_code == 302, r.status_code
        csrf = CSRF_RE.search(client.get("/receive").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        headers = {"HX-Request": "true", "X-CSRFToken": csrf}

        def post(path: str, **fields: str):  # type: ignore[no-untyped-def]
            return client.post(path, data={"key": uuid.uuid4().hex, **fields}, headers=headers)

        from collections import defaultdict

        from sqlalchemy import event

        from app.db import db

        per_statement: dict[str, list[float]] = defaultdict(list)
        timing = {"on": False}

        def _before(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            conn.info["t0"] = time.perf_counter()

        def _after(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            if timing["on"]:
                per_statement[" ".join(statement.split())[:110]].append((time.perf_counter() - conn.info["t0"]) * 1000)

        if args.statements:  # only then: timing each statement costs CPU the request would not spend
            event.listen(db.engine, "before_cursor_execute", _before)
            event.listen(db.engine, "after_cursor_execute", _after)

        prof = cProfile.Profile()
        with app.app_context():
            conn = db.session.connection()
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            db.session.rollback()

        def backend_cpu_ms() -> float:
            fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

        times: list[float] = []
        cpu_ms = 0.0
        sys_ms = 0.0
        statements: list[int] = []

        def measured(path: str, **fields: str):  # type: ignore[no-untyped-def]
            nonlocal cpu_ms, sys_ms
            t0, c0, s0 = time.perf_counter(), time.process_time(), os.times().system
            timing["on"] = True
            if counting and not whole:
                _callgrind("on")
            if not args.no_profile:
                prof.enable()
            r = post(path, **fields)
            if not args.no_profile:
                prof.disable()
            if counting and not whole:
                _callgrind("off")
            timing["on"] = False
            times.append((time.perf_counter() - t0) * 1000)
            cpu_ms += (time.process_time() - c0) * 1000
            sys_ms += (os.times().system - s0) * 1000
            statements.append(int(r.headers.get("X-SQL-Statements", -1)))
            assert r.status_code == 200, r.get_data(as_text=True)[:500]
            return r

        pg0 = backend_cpu_ms()
        if args.flow in ("scan", "open", "close"):
            for i, parcel in enumerate(world.parcels[0]):
                if whole and i == 5:
                    _callgrind("on")
                r = (measured if args.flow == "open" and i >= 5 else post)("/receive/scan", code=parcel.number)
                opened = r.get_data(as_text=True)
                headers["X-Dockhand-Parcel"] = PARCEL_RE.search(opened).group(1)  # type: ignore[union-attr]
                for code in parcel.items:
                    (measured if args.flow == "scan" and i >= 5 else post)("/receive/scan", code=code)
                m = PARCEL_ID_RE.search(opened)
                if m:
                    (measured if args.flow == "close" and i >= 5 else post)("/receive/close", parcel_id=m.group(1))
        else:
            from bench.client import CHECKLIST_KEYS, VERSION_RE

            checklist = {f"q_{k}": "yes" for k in CHECKLIST_KEYS}
            for i, uid in enumerate(world.confirm_units[0]):
                if whole and i == 10:
                    _callgrind("on")
                fields = {"grade": "ABCD"[i % 4], "packaging": ("sealed", "opened", "damaged")[(i // 4) % 3], "notes": "",
                          **checklist}
                path = f"/receive/units/{uid}/"
                r = (measured if args.flow == "inspect" and i >= 10 else post)(path + "inspect", **fields)
                version = VERSION_RE.search(r.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
                if args.flow == "confirm" and i >= 10:
                    measured(path + "dispose", version=version)
                else:
                    post(path + "dispose", version=version)
        if whole:
            _callgrind("off")
        pg_ms = backend_cpu_ms() - pg0
        with app.app_context():
            conn = db.session.connection()
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == backend, "the app changed connections"
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
            db.session.rollback()
        times.sort()
        print(f"{len(times)} {args.flow} requests: p50 {times[len(times) // 2]:.2f} ms, mean {sum(times) / len(times):.2f} ms, "
              f"CPU of this process {cpu_ms / len(times):.2f} ms per request ({sys_ms / len(times):.2f} in the kernel) "
              f"(profiler {'off' if args.no_profile else 'on'}); PostgreSQL backend CPU {pg_ms / len(times):.2f} ms per request (with the flow's other requests); "
              f"{prepared} statements prepared on the connection; statements per request {sorted(set(statements))}")
        if args.statements:
            for sql, ms in sorted(per_statement.items(), key=lambda kv: -sum(kv[1])):
                print(f"{sum(ms) / len(times):7.3f} ms/request  n={len(ms):5d}  {sql}")
        if not args.no_profile:
            pstats.Stats(prof).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    finally:
        server.stop()
    return 0


def _callgrind(state: str) -> None:
    """Switch callgrind's counting on or off for this process (valgrind answers between our sleeps)."""
    ctl = subprocess.Popen(["callgrind_control", "-i", state, str(os.getpid())], stdout=subprocess.DEVNULL)
    while ctl.poll() is None:
        time.sleep(0.01)
    if ctl.returncode != 0:
        raise RuntimeError(f"callgrind_control -i {state} failed")


def _count_instructions(args: argparse.Namespace) -> int:
    """Run this script again under callgrind, counting only after the warm-up; print instructions per
    parcel or unit."""
    with tempfile.TemporaryDirectory(prefix="dockhand-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, *sys.argv]
        done = subprocess.run(cmd, env=dict(os.environ, DOCKHAND_CALLGRIND="1"), capture_output=True, text=True)
        print(done.stdout, end="")
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        total = next(int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:"))
    n = args.parcels - 5 if args.flow in ("scan", "open", "close") else args.units - 10
    per, what = {"scan": ("parcel", "open, 10 scans, close"), "confirm": ("unit", "inspect and confirm")}.get(
        args.flow, (f"{args.flow} request", "that request alone"))
    print(f"{total / n / 1e6:.1f} M instructions per {per} ({what}; {n} after the warm-up, this process only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
