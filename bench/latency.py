"""Does a PDF render stall everyone else? Latency of `GET /api/v1/me` idle and while two fresh renders run.

One uvicorn worker serves a fresh SQLite database with demo data. A client asks `GET /api/v1/me` one request at a
time for `--seconds`, first with nothing else going on (the baseline, measured in the same run), then while two
other clients keep rendering fresh DPA drafts (each changes a variable, then fetches the document, so the render
cache never answers). Prints p50, p99 and max of both; goal: p99 under renders <= 3x idle p99. The render load
runs in a process of its own, so receiving its PDFs never delays the probe's event loop.

Then renders alone: one fresh render, and two at once (two agreements); goal: the pair takes <= 1.3x one.

    .venv/bin/python bench/latency.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import demo_environment, free_port, start, wait_until_up
from tests.helpers.agreements import request_variables


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def sample(client: httpx.AsyncClient, seconds: float) -> list[float]:
    """Latencies (ms) of sequential GET /api/v1/me for `seconds`."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        response = await client.get("/me")
        latencies.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return latencies


async def fresh_render(client: httpx.AsyncClient, agreement_id: str, n: int) -> float:
    """Change the draft (so no cache can answer), then fetch its PDF; seconds for the fetch."""
    patched = await client.patch(
        f"/agreements/{agreement_id}", json={"variables": {"processing": {"duration": f"Term of service, run {n}"}}}
    )
    patched.raise_for_status()
    began = time.perf_counter()
    document = await client.get(f"/agreements/{agreement_id}/document")
    document.raise_for_status()
    return time.perf_counter() - began


def render_load(base: str, key: str, ids: list[str], stop: Any, done: Any, round_no: int) -> None:
    """Keep one fresh render per agreement going until `stop` is set. Runs in its own process, so handling the
    PDFs it receives never delays the probe's own event loop (it measures the server, not its neighbour)."""

    async def one(client: httpx.AsyncClient, agreement_id: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await fresh_render(client, agreement_id, 100_000 * round_no + n)
            with done.get_lock():
                done.value += 1

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(120.0)) as client:
            await asyncio.gather(*(one(client, agreement_id) for agreement_id in ids))

    asyncio.run(run())


async def measure(base: str, key: str, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as client:
        ids = []
        for _ in range(2):
            created = await client.post(
                "/agreements", json={"template_key": "standard-dpa", "variables": request_variables()}
            )
            created.raise_for_status()
            ids.append(created.json()["id"])
        for i, agreement_id in enumerate(ids):  # warm-up: templates compiled, workers started
            await fresh_render(client, agreement_id, -1 - i)
        await sample(client, 2)

        idle: list[float] = []
        loaded: list[float] = []
        done = multiprocessing.Value("i", 0)
        for round_no in range(2):  # interleaved, so a noisy moment of the machine does not land on one side only
            idle += await sample(client, seconds / 2)
            stop = multiprocessing.Event()
            load = multiprocessing.Process(target=render_load, args=(base, key, ids, stop, done, round_no))
            load.start()
            await asyncio.sleep(1.0)
            loaded += await sample(client, seconds / 2)
            stop.set()
            await asyncio.to_thread(load.join, 120)
        renders = [1] * done.value

        singles, pairs = [], []
        for n in range(5):
            singles.append(await fresh_render(client, ids[0], 100 + n))
            began = time.perf_counter()
            await asyncio.gather(*(fresh_render(client, aid, 200 + 10 * n + i) for i, aid in enumerate(ids)))
            pairs.append(time.perf_counter() - began)

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label:<28} n={len(values):5d}  p50 {percentile(values, 0.5):7.1f} ms  "
            f"p99 {percentile(values, 0.99):7.1f} ms  max {max(values):7.1f} ms"
        )

    print(line("GET /api/v1/me idle", idle))
    print(line("... while 2 renders run", loaded) + f"  ({len(renders)} renders finished meanwhile)")
    print(f"p99 under renders / idle p99: {percentile(loaded, 0.99) / percentile(idle, 0.99):.2f}x (goal <= 3x)")
    one, two = statistics.median(singles), statistics.median(pairs)
    print(f"one fresh render {one * 1000:.0f} ms; two at once {two * 1000:.0f} ms: {two / one:.2f}x (goal <= 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    var_dir, env, key = demo_environment()
    port = free_port()
    server = start("dpa_service.app:create_app", port, env, factory=True)
    try:
        wait_until_up(port, "/api/v1/me", key)
        asyncio.run(measure(f"http://127.0.0.1:{port}/api/v1", key, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
