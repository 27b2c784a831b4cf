"""Browser tests: a real `dpa serve` on a free port, and Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here (no network beyond the package registries), so the tests
launch `/usr/bin/chromium` (scripts/_env.sh installs it with the test extras). Without it they skip with a reason,
except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI

CHROMIUM = os.environ.get("DPA_TEST_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium tries Google's hosts at every start, and this machine's closed network refuses them.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveServer:
    url: str
    var_dir: Path
    keys: dict[str, Any]

    def api(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def mails(self) -> list[dict[str, Any]]:
        path = self.var_dir / "mail" / "outbox.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(var_dir: Path, port: int | None = None, **extra_env: str) -> Iterator[LiveServer]:
    """`dpa demo` then `dpa serve` on `port` (a free one by default), as the README's first command does, with
    `extra_env` (e.g. a DocuSign stand-in's configuration) on a database in `var_dir`."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DPA_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}",
        "DPA_ENV": "development",
        "DPA_RENDER_PROCESSES": "1",  # one browser's clicks need no second render process (each costs ~2 s to start)
        **extra_env,
    }
    for unset in ("REDIS_URL", *(() if "PUBLIC_BASE_URL" in extra_env else ("PUBLIC_BASE_URL",))):
        env.pop(unset, None)
    dpa = [sys.executable, "-m", "dpa_service"]
    # Generous start-up limits: on 2 busy cores a start (migrations, demo data, first renders) took over a minute.
    demo = subprocess.run([*dpa, "demo"], env=env, capture_output=True, text=True, check=True, timeout=300)
    server = subprocess.Popen([*dpa, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("dpa serve did not come up")
            time.sleep(0.2)
        yield LiveServer(url, var_dir, json.loads(demo.stdout))
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service with demo data on a database of this module's own."""
    with serving(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        if IN_CI:
            raise AssertionError(f"CI must run the browser tests, but {CHROMIUM} is missing (scripts/_env.sh)")
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
