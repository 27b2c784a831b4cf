"""What the browser tests share: signing in as a person does, the accessibility check, and screenshots."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import LiveServer

_AXE = Axe()
SCREENSHOTS = Path(os.environ["DPA_SCREENSHOTS_DIR"]) if os.environ.get("DPA_SCREENSHOTS_DIR") else None


def sign_in_by_email(page: Any, server: LiveServer, email: str) -> None:
    """Type the address on /login, open the link that arrives in the mail log, and confirm it."""
    page.goto(f"{server.url}/login")
    page.get_by_label("E-mail address").fill(email)
    before = len(server.mails())
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_text("Check your inbox").first.wait_for()  # the answer page, once it has loaded
    mail = _new_mail(server, before, lambda m: m["to"] == email and "sign-in link" in m["subject"])
    link = re.search(r"http://\S+/login/\S+", mail["body"])
    assert link, mail["body"]
    page.goto(link.group(0))
    page.get_by_role("button", name="Continue and sign in").click()
    page.wait_for_load_state()


def _new_mail(server: LiveServer, before: int, wanted: Any, timeout: float = 15.0) -> dict[str, Any]:
    """The first mail matching `wanted` written after the first `before` ones: the outbox's worker sends it a
    moment after the page answers, and an earlier sign-in's link (already used) must not be taken for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in server.mails()[before:] if wanted(m)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no new mail in {timeout:g} s"
        time.sleep(0.05)


def sign_in_with_key(page: Any, server: LiveServer, key: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#api_key", key)
    page.get_by_role("button", name="Sign in with the key").click()
    page.wait_for_load_state()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def accessible(page: Any, seen: list[str]) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    results = _AXE.run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )
    seen.append(page.url)


def screenshot(page: Any, name: str, tmp: Path) -> None:
    """The README's images, when DPA_SCREENSHOTS_DIR names where (docs/screenshots); a normal run takes none
    (full-page captures cost CI seconds and nobody looks at them)."""
    if SCREENSHOTS is None:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
