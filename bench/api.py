"""Requests/s of two authenticated reads against bare Litestar handlers doing the same selects:

* `GET /api/v1/me` (the key lookup alone);
* `GET /api/v1/agreements?limit=50` for a tenant with 50 agreements (the key lookup, one indexed page query and
  the same JSON).

Both servers run as one uvicorn worker on SQLite (aiosqlite) in a fresh temporary database, measured in the same
run with the same load generator (wrk when installed, else a bounded Python client), alternating rounds.
Prints each figure and the ratio ours/bare (goal >= 0.8 for each). Not part of the test suite.

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
from typing import Any

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


def demo_environment(*, with_legal: bool = False) -> Any:
    """A fresh SQLite database with demo data: its folder, the server environment, a Subscriber owner's key (and
    with `with_legal`, the demo legal user's key)."""
    var_dir = Path(tempfile.mkdtemp(prefix="dpa-bench-"))
    env = {**os.environ, "DPA_VAR_DIR": str(var_dir), "DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"}
    env["PYTHONPATH"] = str(ROOT)
    seeded = subprocess.run(
        [sys.executable, "-m", "dpa_service", "demo"], env=env, capture_output=True, text=True, check=True
    )
    printed = json.loads(seeded.stdout)
    owner = printed["tenants"]["Acme Retail"]["api_key"]
    if with_legal:
        return var_dir, env, owner, printed["staff"]["legal"]["api_key"]
    return var_dir, env, owner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    var_dir, env, key = demo_environment()
    load = run_wrk if shutil.which("wrk") else run_python
    ours_port, bare_port = free_port(), free_port()
    servers = [
        start("dpa_service.app:create_app", ours_port, env, factory=True),
        start("bench.bare_app:app", bare_port, env, factory=False),
    ]
    endpoints = [
        ("GET /api/v1/me", "/api/v1/me", "/me"),
        ("GET /api/v1/agreements?limit=50", "/api/v1/agreements?limit=50", "/agreements?limit=50"),
    ]
    results: list[tuple[str, list[float], list[float]]] = []
    try:
        wait_until_up(ours_port, "/api/v1/me", key)
        wait_until_up(bare_port, "/me", key)
        create_agreements(ours_port, key, 50)
        for label, ours_path, bare_path in endpoints:
            ours_url, bare_url = f"http://127.0.0.1:{ours_port}{ours_path}", f"http://127.0.0.1:{bare_port}{bare_path}"
            load(ours_url, key, 2, args.connections)  # warm-up
            load(bare_url, key, 2, args.connections)
            ours, bare = [], []
            for _ in range(args.rounds):
                ours.append(load(ours_url, key, args.seconds, args.connections))
                bare.append(load(bare_url, key, args.seconds, args.connections))
            results.append((label, ours, bare))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(var_dir, ignore_errors=True)
    print(
        f"load generator: {load.__name__.removeprefix('run_')}, {args.connections} connections, "
        f"{args.rounds} x {args.seconds}s each"
    )
    for label, ours, bare in results:
        ours_rps, bare_rps = statistics.median(ours), statistics.median(bare)
        print(
            f"{label}: ours {ours_rps:7.0f} req/s {[round(x) for x in ours]}, bare {bare_rps:7.0f} req/s "
            f"{[round(x) for x in bare]}, ratio {ours_rps / bare_rps:.2f} (goal >= 0.80)"
        )


def create_agreements(port: int, key: str, count: int) -> None:
    """`count` draft agreements for the benchmark's tenant, made through the API as a Subscriber would."""
    import httpx

    sys.path.insert(0, str(ROOT))
    from tests.helpers.agreements import request_variables

    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(count):
            response = http.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
            response.raise_for_status()
        listed = http.get("/agreements", params={"limit": count}).json()["items"]
    assert len(listed) == count, len(listed)


if __name__ == "__main__":
    main()
