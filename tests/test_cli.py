"""The `dpa` command as an operator runs it: bootstrap, demo, audit verify."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def dpa(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPA_VAR_DIR": str(var_dir)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    var_dir = tmp_path_factory.mktemp("var")
    result = dpa(var_dir, "demo")
    assert result.returncode == 0, result.stderr
    return var_dir, json.loads(result.stdout)


def test_bootstrap_prints_one_json_object_then_refuses(tmp_path: Path) -> None:
    first = dpa(tmp_path, "bootstrap", "--email", "root@processor.example")
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)  # exactly one JSON object, nothing else on stdout
    assert created["api_key"].startswith("dpa_") and created["role"] == "platform_admin"
    assert (tmp_path / "dpa.db").exists()

    again = dpa(tmp_path, "bootstrap", "--email", "other@processor.example")
    assert again.returncode == 1
    assert again.stdout == "" and "already exists" in again.stderr

    verified = dpa(tmp_path, "audit", "verify")  # the platform chain holds the one bootstrap event
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == "platform: 1 event, ok\n"


def test_demo_seeds_staff_and_two_tenants_and_can_run_again(demo_var: tuple[Path, dict]) -> None:
    var_dir, first = demo_var
    assert set(first["staff"]) == {"platform_admin", "legal", "sales"}
    assert len(first["tenants"]) == 2
    assert first["templates"]["standard-dpa"] == "v1 approved"
    personas = [*first["staff"].values(), *first["tenants"].values()]
    assert all(p["email"] and p["api_key"].startswith("dpa_") for p in personas), "each persona can sign in"
    assert "/login" in first["sign_in"] and "var/mail/outbox.jsonl" in first["sign_in"]
    second = dpa(var_dir, "demo")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert {t["id"] for t in again["tenants"].values()} == {t["id"] for t in first["tenants"].values()}
    assert again["staff"]["legal"]["api_key"] != first["staff"]["legal"]["api_key"]


def test_templates_sync_is_idempotent(demo_var: tuple[Path, dict]) -> None:
    var_dir, _ = demo_var
    result = dpa(var_dir, "templates", "sync")
    assert result.returncode == 0, result.stderr
    assert "templates up to date" in result.stdout


def test_registry_sync_checks_the_reference_data(tmp_path: Path) -> None:
    from dpa_service.core import registry

    assert registry.check() == []
    result = dpa(tmp_path, "registry", "sync")
    assert result.returncode == 0, result.stderr
    assert "transfer mechanisms" in result.stdout and "consistent" in result.stdout


def test_audit_verify_exits_1_naming_the_first_broken_seq(demo_var: tuple[Path, dict]) -> None:
    var_dir, seeded = demo_var
    ok = dpa(var_dir, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    tenant_id = next(iter(seeded["tenants"].values()))["id"]

    with sqlite3.connect(var_dir / "dpa.db") as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET action = 'tenant.renamed' WHERE chain = ? AND seq = 1", (tenant_id,))
    broken = dpa(var_dir, "audit", "verify")
    assert broken.returncode == 1
    assert f"{tenant_id}: " in broken.stdout and "BROKEN at seq 1" in broken.stdout


def _sealed_pdf(keys_dir: Path, out: Path) -> Path:
    """A one-page PDF sealed with the key a service keeps in `keys_dir` (made there on first use)."""
    import io

    from pypdf import PdfWriter

    from dpa_service.documents.seal import SealConfig, seal_pdf

    blank = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(blank)
    out.write_bytes(seal_pdf(SealConfig(keys_dir=keys_dir), blank.getvalue(), "test", None))
    return out


def _run_in(cwd: Path, *args: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    # This checkout's code, whatever the cwd (the venv may have another checkout installed).
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env_overrides}
    for name in ("DPA_VAR_DIR", "DATABASE_URL", "DPA_SEAL_CERT_PATH", "DPA_SEAL_KEY_PATH"):
        if name not in env_overrides:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_verify_outside_the_service_directory_creates_nothing_and_names_what_it_looked_for(
    demo_var: tuple[Path, dict], tmp_path: Path
) -> None:
    var_dir, _ = demo_var
    pdf = _sealed_pdf(var_dir / "keys", tmp_path / "sealed.pdf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    lost = _run_in(elsewhere, "verify", str(pdf))
    assert lost.returncode == 3, lost.stdout + lost.stderr
    assert "no seal certificate at" in lost.stderr and str(Path("var") / "keys" / "seal.cert.pem") in lost.stderr
    assert list(elsewhere.iterdir()) == []  # no ./var/, no key, no database

    # The service's directory by DPA_VAR_DIR: its own seal is recognized (before: "sealed with another
    # certificate", checked against a key just made in ./var/).
    keys_before = sorted(p.name for p in (var_dir / "keys").iterdir())
    found = _run_in(elsewhere, "verify", str(pdf), DPA_VAR_DIR=str(var_dir))
    assert found.returncode == 2, found.stderr
    assert json.loads(found.stdout)["detail"] == "sealed by this service, but not an executed agreement on record"
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in (var_dir / "keys").iterdir()) == keys_before


def test_verify_with_cert_names_the_certificate_to_check_against(demo_var: tuple[Path, dict], tmp_path: Path) -> None:
    var_dir, _ = demo_var
    pdf = _sealed_pdf(tmp_path / "service-keys", tmp_path / "sealed.pdf")
    cert = tmp_path / "service-keys" / "seal.cert.pem"
    database = f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    checked = _run_in(elsewhere, "verify", "--cert", str(cert), str(pdf), DATABASE_URL=database)
    assert checked.returncode == 2, checked.stderr
    assert json.loads(checked.stdout)["detail"] == "sealed by this service, but not an executed agreement on record"
    other = _run_in(elsewhere, "verify", "--cert", str(cert), str(pdf), DPA_VAR_DIR=str(var_dir))
    assert json.loads(other.stdout)["status"] == "unknown" and other.returncode == 2
    assert list(elsewhere.iterdir()) == []

    no_database = _run_in(elsewhere, "verify", "--cert", str(cert), str(pdf))
    assert no_database.returncode == 3 and "no database at" in no_database.stderr
    missing = _run_in(elsewhere, "verify", "--cert", str(tmp_path / "nope.pem"), str(pdf))
    assert missing.returncode == 3 and f"no seal certificate at {tmp_path / 'nope.pem'}" in missing.stderr
    assert list(elsewhere.iterdir()) == []
