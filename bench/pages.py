"""What the signed-in Subscriber dashboard costs against the JSON calls that feed it, in one run.

One `dpa serve`-equivalent uvicorn worker on a fresh SQLite demo database (the demo tenant Acme Retail, with a DPA
in progress and a pending sub-processor change so every panel of the dashboard has something to show). Two loads,
alternating rounds, with the same client and concurrency:

* **page**: `GET /app/` with a session cookie (sign-in through `/login/key`, as a browser does);
* **API**: one "dashboard's worth" of JSON calls with the owner's key, in sequence: the same reads the page makes
  (`DASHBOARD_CALLS`), counted as one unit.

Prints both rates and the cost ratio (API units/s over pages/s: how many dashboards' worth of API calls one page
costs). Goal: <= 1.5. Not part of the test suite.

    .venv/bin/python bench/pages.py [--seconds 10] [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import demo_environment, free_port, start, wait_until_up

# The JSON reads behind the dashboard (dpa_service/agreements/app_context.py `overview`): every agreement of the
# tenant (pages of 200), its sub-processor position (authorized version and pending changes) and its obligations.
DASHBOARD_CALLS = ["/api/v1/agreements?limit=200", "/api/v1/tenant/subprocessors", "/api/v1/obligations?limit=200"]


def sign_in(base: str, key: str) -> httpx.Cookies:
    with httpx.Client(base_url=base, headers={"Accept": "text/html"}) as browser:
        login = browser.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]*)"', login.text)
        assert token, "no CSRF token on /login"
        answer = browser.post("/login/key", data={"api_key": key, "_csrf_token": token.group(1)})
        assert answer.status_code == 303, answer.text
        page = browser.get("/app/")
        assert page.status_code == 200 and "Dashboard" in page.text, page.status_code
        return browser.cookies


def prepare(base: str, key: str, legal_key: str) -> None:
    """A DPA in progress and a pending sub-processor change, so the dashboard shows each of its panels."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers.agreements import request_variables

    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}) as api:
        created = api.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
        created.raise_for_status()
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {legal_key}"}) as legal:
        change = {
            "add": [
                {
                    "name": "Bench Mail Ltd",
                    "entity": "Bench Mail Ltd, Dublin",
                    "purpose": "Transactional e-mail",
                    "locations": ["IE"],
                    "data_categories": ["contact details"],
                    "transfer_mechanism": "adequacy",
                }
            ],
            "remove": [],
            "notice_days": 30,
            "reason": "bench",
        }
        legal.post("/subprocessor-changes", json=change)  # best effort: the dashboard renders either way


def rate(unit: list[tuple[str, dict[str, str], httpx.Cookies | None]], seconds: int, connections: int) -> float:
    async def main() -> float:
        done = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    for url, headers, cookies in unit:
                        response = await client.get(url, headers=headers, cookies=cookies)
                        if response.status_code != 200:
                            raise RuntimeError(f"{url}: {response.status_code}")
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return done / (time.monotonic() - started)

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    var_dir, env, key, legal_key = demo_environment(with_legal=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start("dpa_service.app:create_app", port, env, factory=True)
    try:
        wait_until_up(port, "/api/v1/me", key)
        prepare(base, key, legal_key)
        cookies = sign_in(base, key)
        page_unit = [(f"{base}/app/", {"Accept": "text/html"}, cookies)]
        api_unit = [(f"{base}{path}", {"Authorization": f"Bearer {key}"}, None) for path in DASHBOARD_CALLS]
        rate(page_unit, 2, args.connections)  # warm-up
        rate(api_unit, 2, args.connections)
        pages, apis = [], []
        for _ in range(args.rounds):
            pages.append(rate(page_unit, args.seconds, args.connections))
            apis.append(rate(api_unit, args.seconds, args.connections))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(var_dir, ignore_errors=True)
    page_rps, api_rps = statistics.median(pages), statistics.median(apis)
    print(f"python client, {args.connections} connections, {args.rounds} x {args.seconds}s, alternating")
    print(f"GET /app/ (signed in): {page_rps:7.0f} pages/s {[round(x) for x in pages]}")
    print(
        f"API behind it ({len(DASHBOARD_CALLS)} calls: {', '.join(DASHBOARD_CALLS)}): "
        f"{api_rps:7.0f} units/s {[round(x) for x in apis]}"
    )
    print(f"the page costs {api_rps / page_rps:.2f}x its API calls (goal <= 1.5)")


if __name__ == "__main__":
    main()
