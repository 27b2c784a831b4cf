"""Requests/s of authenticated GET /api/v1/me against a bare Litestar handler doing the same indexed select.

Both run as one uvicorn worker on SQLite (aiosqlite) in a fresh temporary database, measured in the same
run with the same load generator (wrk when installed, else a bounded Python client), alternating rounds.
Prints each figure and the ratio ours/bare (goal >= 0.8). Not part of the test suite.

    .venv/bin/python bench/api.py [--seconds 10] [--connections 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, path: str, key: str) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {key}"}).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not come up")


def start(app: str, port: int, env: dict[str, str], factory: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if factory:
        args.append("--factory")
    return subprocess.Popen(args, env=env, cwd=ROOT)


def run_wrk(url: str, key: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {key}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run_python(url: str, key: str, seconds: int, connections: int) -> float:
    import httpx

    async def main() -> float:
        done = 0
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as client:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    response = await client.get(url)
                    response.raise_for_status()
                    done += 1

            start_at = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return done / (time.monotonic() - start_at)

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="dpa-bench-"))
    env = {**os.environ, "DPA_VAR_DIR": str(var_dir), "DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"}
    env["PYTHONPATH"] = str(ROOT)
    seeded = subprocess.run(
        [sys.executable, "-m", "dpa_service", "demo"], env=env, capture_output=True, text=True, check=True
    )
    key = json.loads(seeded.stdout)["tenants"]["Acme Retail"]["api_key"]
    load = run_wrk if shutil.which("wrk") else run_python
    ours_port, bare_port = free_port(), free_port()
    servers = [
        start("dpa_service.app:create_app", ours_port, env, factory=True),
        start("bench.bare_app:app", bare_port, env, factory=False),
    ]
    try:
        wait_until_up(ours_port, "/api/v1/me", key)
        wait_until_up(bare_port, "/me", key)
        ours_url, bare_url = f"http://127.0.0.1:{ours_port}/api/v1/me", f"http://127.0.0.1:{bare_port}/me"
        load(ours_url, key, 2, args.connections)  # warm-up
        load(bare_url, key, 2, args.connections)
        ours, bare = [], []
        for _ in range(args.rounds):
            ours.append(load(ours_url, key, args.seconds, args.connections))
            bare.append(load(bare_url, key, args.seconds, args.connections))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(var_dir, ignore_errors=True)
    ours_rps, bare_rps = statistics.median(ours), statistics.median(bare)
    print(
        f"load generator: {load.__name__.removeprefix('run_')}, {args.connections} connections, "
        f"{args.rounds} x {args.seconds}s each"
    )
    print(f"GET /api/v1/me (authenticated, full app): {ours_rps:8.0f} req/s  rounds: {[round(x) for x in ours]}")
    print(f"bare Litestar handler, same select:      {bare_rps:8.0f} req/s  rounds: {[round(x) for x in bare]}")
    print(f"ratio ours/bare: {ours_rps / bare_rps:.2f} (goal >= 0.80)")


if __name__ == "__main__":
    main()
