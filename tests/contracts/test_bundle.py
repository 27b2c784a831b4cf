"""The contract bundle (issue 13, Must show 1): a zip of the attached executed DPAs' sealed PDFs, their certificates,
a manifest whose hashes match the files, and the manifest's detached signature by the service's seal, verifiable
offline with the documented OpenSSL command and `dpa verify-bundle`; one changed byte in the manifest fails both.
Both databases."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dpa_service.cli import main
from dpa_service.contracts.bundle import VERIFY_COMMAND
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings, clear_settings_cache
from tests.contracts.support import attach, new_contract
from tests.helpers.agreements import approve_standard_dpa, new_agreement, to_status
from tests.helpers.api import Api


@pytest.fixture
async def owner(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_tenant()


def openssl_verifies(folder: Path) -> bool:  # a subprocess of a few ms: blocking is fine in a test
    """The README's command, exactly (VERIFY_COMMAND), run in the unpacked bundle."""
    done = subprocess.run(VERIFY_COMMAND.split(), cwd=folder, capture_output=True, text=True, check=False)
    return done.returncode == 0 and "Verified OK" in done.stdout


def verify_bundle(settings: Settings, path: Path) -> tuple[int, dict[str, object]]:
    """`dpa verify-bundle FILE` where the service's DPA_VAR_DIR is (its seal certificate is the one trusted)."""
    env = {"DPA_VAR_DIR": str(settings.var_dir), "DATABASE_URL": settings.database.url}
    clear_settings_cache()  # the command reads its settings from this environment, not an earlier test's
    try:
        result = CliRunner().invoke(main, ["verify-bundle", str(path)], env=env)
    finally:
        clear_settings_cache()
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


async def test_the_bundle_holds_each_executed_dpa_and_a_signed_manifest_a_changed_byte_breaks(
    owner: Api, admin: Api, settings: Settings, tmp_path: Path
) -> None:
    legal, sales = await admin.new_staff("legal"), await admin.new_staff("sales")
    executed = await to_status(owner, legal, "executed")
    contract = await new_contract(sales, owner.tenant_id, reference="CRM/42")
    assert (await sales.get(f"/contracts/{contract['id']}/bundle")).status_code == 409  # nothing executed yet
    await attach(sales, contract["id"], executed["id"])
    await attach(sales, contract["id"], (await new_agreement(owner))["id"])  # a draft: not in the bundle

    response = await sales.get(f"/contracts/{contract['id']}/bundle")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="contract-CRM-42-bundle.zip"' in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = json.loads(archive.read("manifest.json"))
    pdf_name = f"dpa-{executed['id']}-executed.pdf"
    assert {f["name"] for f in manifest["files"]} == {
        pdf_name, f"dpa-{executed['id']}-certificate.json", "seal-certificate.pem", "seal-public-key.pem"
    }  # fmt: skip
    for entry in manifest["files"]:  # every hash matches its file
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"], entry["name"]
    pdf = archive.read(pdf_name)
    assert hashlib.sha256(pdf).hexdigest() == executed["document_sha256"]  # the sealed PDF, as executed
    certificate = json.loads(archive.read(f"dpa-{executed['id']}-certificate.json"))
    assert certificate["executed_sha256"] == executed["document_sha256"] and len(certificate["signatures"]) == 2
    assert manifest["contract_id"] == contract["id"] and manifest["generated_at"]
    [entry] = manifest["agreements"]
    assert (entry["agreement_id"], entry["template_key"], entry["template_version"], entry["current"]) == (
        executed["id"], "standard-dpa", executed["template_version"], True)  # fmt: skip
    assert (
        entry["effective_date"] == executed["effective_date"]
        and entry["document_sha256"] == executed["document_sha256"]
    )

    # The documented check: the OpenSSL command from the README, in the unpacked bundle.
    folder = tmp_path / "bundle"
    archive.extractall(folder)
    assert shutil.which("openssl"), "the README's offline check needs openssl (scripts/_env.sh installs it)"
    assert openssl_verifies(folder)
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, check=False)  # noqa: ASYNC221
    assert sums.returncode == 0, sums.stdout
    saved = tmp_path / "bundle.zip"
    saved.write_bytes(response.content)
    code, report = verify_bundle(settings, saved)
    assert (code, report["ok"], report["files"]) == (0, True, 4), report

    # One byte changed in the manifest: the signature no longer verifies, either way.
    original = (folder / "manifest.json").read_bytes()
    changed = original.replace(b'"current": true', b'"current": truE', 1)
    assert len(changed) == len(original) and changed != original
    (folder / "manifest.json").write_bytes(changed)
    assert not openssl_verifies(folder)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as out:
        for name in archive.namelist():
            out.writestr(name, changed if name == "manifest.json" else archive.read(name))
    code, report = verify_bundle(settings, tampered)
    assert code == 1 and "bad signature: manifest.json is not as the service signed it" in report["problems"]


async def test_a_superseded_dpa_stays_in_the_bundle_marked_not_current(owner: Api, admin: Api) -> None:
    legal, sales = await admin.new_staff("legal"), await admin.new_staff("sales")
    first = await to_status(owner, legal, "executed")
    contract = await attach(sales, (await new_contract(sales, owner.tenant_id))["id"], first["id"])
    second = await to_status(owner, legal, "executed")  # supersedes the first; attached to the contract for it
    archive = zipfile.ZipFile(io.BytesIO((await sales.get(f"/contracts/{contract['id']}/bundle")).content))
    manifest = json.loads(archive.read("manifest.json"))
    marks = {a["agreement_id"]: (a["status"], a["current"], a["superseded_by"]) for a in manifest["agreements"]}
    assert marks == {first["id"]: ("superseded", False, second["id"]), second["id"]: ("executed", True, None)}
    note = next(a["note"] for a in manifest["agreements"] if a["agreement_id"] == first["id"])
    assert "superseded" in note
    assert {f"dpa-{a}-executed.pdf" for a in (first["id"], second["id"])} <= set(archive.namelist())
