"""The README's tour runs as written: its shell block, pasted into bash against a fresh `dpa demo` + `dpa serve`,
stops at nothing (`set -euo pipefail`, every curl `--fail-with-body`)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import LiveServer, live_server  # noqa: F401 - the fixture, shared with the browser tests

ROOT = Path(__file__).resolve().parents[1]


def tour_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## A short tour\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def test_the_tour_is_a_script_a_human_can_paste() -> None:
    blocks = tour_blocks()
    assert len(blocks) == 1 and blocks[0].startswith("set -euo pipefail\n")
    script = blocks[0]
    assert "uuidgen" not in script and "jq" not in script, "a fresh Debian has neither"
    for line in script.splitlines():
        if line.lstrip().startswith("curl"):
            assert "--fail-with-body" in line, line
    for path in (
        "/transfers",
        "/transfer-notices",
        "/countersign",
        "/signature-requests",
        "/obligations",
        "/breach-notices",
        "/inquiries",
        "/records-of-processing",
    ):
        assert f"{path} " in script or f'{path}"' in script or f"{path}?" in script, f"the tour shows {path}"


def test_the_tour_runs_against_a_fresh_demo(live_server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    # Where a reader runs it: a directory with .venv/bin/dpa (here: this checkout's code, on the server's var/).
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    dpa = bin_dir / "dpa"
    dpa.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dpa_service "$@"\n')
    dpa.chmod(dpa.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "ADMIN": live_server.keys["staff"]["platform_admin"]["api_key"],
        "API": f"{live_server.url}/api/v1",
        "DPA_VAR_DIR": str(live_server.var_dir),
        "DATABASE_URL": f"sqlite+aiosqlite:///{live_server.var_dir / 'dpa.db'}",
        "PYTHONPATH": str(ROOT),
    }
    assert shutil.which("bash") and shutil.which("curl")
    run = subprocess.run(
        ["bash", "-c", tour_blocks()[0]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    assert '"status":"verified"' in run.stdout.replace(" ", ""), "the executed PDF verifies offline"
    assert "events, ok" in run.stdout or "event, ok" in run.stdout
