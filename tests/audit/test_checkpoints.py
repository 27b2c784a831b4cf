"""The audit chains anchored outside the database: signed checkpoints catch what the database alone cannot.

The three rewrites a database owner could make quietly (each consistent in itself, so the chain alone passes) are
caught by `dpa audit verify` against the checkpoints; heads cannot be rewound through SQL; tenants fetch their own
signed checkpoints and verify them offline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service.audit import services as audit
from dpa_service.audit.anchoring import signer_for_seal
from dpa_service.audit.checkpoint_files import CheckpointFiles, Head
from dpa_service.audit.checkpoints import Checkpoint, load_public_keys, signature_problem
from dpa_service.cli import main
from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import Settings
from dpa_service.documents.seal import SealConfig
from tests.audit.checkpoint_support import (
    EVENTS,
    as_owner_without_triggers,
    checkpoint_round,
    dpa,
    events_of,
    overwrite,
    rehash,
    set_head,
    tenant,
)
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated

ROOT = Path(__file__).resolve().parents[2]


async def _tenant_with_events(admin: Api, count: int) -> Api:
    owner = await admin.new_tenant()
    for _ in range(count - 1):
        await owner.post("/api-keys", {"name": "k"})
    return owner


async def _consistent_in_itself(db: Database, owner: Api) -> bool:
    """What `dpa audit verify` said before checkpoints: the chain checked against itself and its head row."""
    return (await audit.verify(db, Scope.system(), tenant(owner))).ok


# --- The three rewrites that passed before ---------------------------------------------------------------------


async def test_deleting_the_last_event_and_rewinding_the_head_is_caught(
    admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
) -> None:
    owner = await _tenant_with_events(admin, 4)
    await checkpoint_round(db, settings)
    events = await events_of(db, owner.tenant_id or "")
    async with as_owner_without_triggers(owner_engine) as conn:
        await conn.execute(delete(EVENTS).where(EVENTS.c.id == events[3].id))
        await set_head(conn, events[3].chain, 3, events[2].hash)
    assert await _consistent_in_itself(db, owner)

    result = await dpa(settings, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert (
        f"{owner.tenant_id}: 3 events, BROKEN at seq 4: the chain ends at seq 3, but seq 4 was checkpointed at"
        in result.output
    )
    assert f"(expected {events[3].hash} at seq 4, found nothing)" in result.output
    assert "platform: " in result.output and "platform: 0 events" not in result.output  # the others still checked


async def test_a_rewritten_event_with_every_later_hash_recomputed_is_caught(
    admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
) -> None:
    owner = await _tenant_with_events(admin, 4)
    await checkpoint_round(db, settings)
    events = await events_of(db, owner.tenant_id or "")
    signed = events[3].hash
    events[1].action = "api_key.deleted"
    forged = rehash(events[1:], events[0].hash)
    async with as_owner_without_triggers(owner_engine) as conn:
        for event in forged:
            await overwrite(conn, event)
        await set_head(conn, events[3].chain, 4, forged[-1].hash)
    assert await _consistent_in_itself(db, owner)

    result = await dpa(settings, "audit", "verify", "--tenant", owner.tenant_id or "")
    assert result.exit_code == 1, result.output
    assert (
        f"{owner.tenant_id}: 3 events, BROKEN at seq 4: event 4 differs from the checkpoint signed at" in result.output
    )
    assert f"expected {signed}, found {forged[-1].hash}" in result.output
    over_http = (await owner.get("/audit-events/verify")).json()
    assert over_http["ok"] is False and over_http["checkpoint_ok"] is False and over_http["broken_seq"] == 4
    assert (over_http["expected"], over_http["found"]) == (signed, forged[-1].hash)


async def test_an_event_moved_to_another_tenants_chain_is_caught(
    admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
) -> None:
    source, target = await _tenant_with_events(admin, 3), await _tenant_with_events(admin, 2)
    await checkpoint_round(db, settings)
    source_events, target_events = (
        await events_of(db, source.tenant_id or ""),
        await events_of(db, target.tenant_id or ""),
    )
    moved = source_events[2]  # the source's last event, appended to the target's chain as its seq 3
    moved.chain, moved.tenant_id, moved.seq = target_events[0].chain, target_events[0].tenant_id, 3
    rehash([moved], target_events[-1].hash)
    async with as_owner_without_triggers(owner_engine) as conn:
        await overwrite(conn, moved)
        await set_head(conn, source_events[0].chain, 2, source_events[1].hash)
        await set_head(conn, target_events[0].chain, 3, moved.hash)
    assert await _consistent_in_itself(db, source) and await _consistent_in_itself(db, target)

    result = await dpa(settings, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert f"{source.tenant_id}: 2 events, BROKEN at seq 3: the chain ends at seq 2, but seq 3 was checkpointed" in (
        result.output
    )
    # The receiving chain grew after its last checkpoint: only the next round anchors that (and it is the
    # source chain's checkpoint that gives the move away).
    assert f"{target.tenant_id}: 3 events, ok, matches 1 checkpoint" in result.output


# --- The database refuses what it can --------------------------------------------------------------------------


async def test_heads_cannot_be_rewound_or_deleted_through_sql_even_by_the_owner(
    admin: Api, db: Database, owner_engine: AsyncEngine
) -> None:
    owner = await _tenant_with_events(admin, 2)
    chain = owner.tenant_id
    before = (await owner.get("/audit-events/verify")).json()
    for statement in (
        f"DELETE FROM audit_heads WHERE chain = '{chain}'",
        f"UPDATE audit_heads SET seq = seq - 1 WHERE chain = '{chain}'",
        f"UPDATE audit_heads SET hash = '{'0' * 64}' WHERE chain = '{chain}'",
        f"UPDATE audit_heads SET tenant_id = NULL WHERE chain = '{chain}'",
        f"UPDATE audit_heads SET chain = '{uuid.uuid4()}' WHERE chain = '{chain}'",
    ):
        with pytest.raises(Exception, match=r"only moves forward|append-only"):
            async with owner_engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # row-level security is forced on the owner too
                    await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))
                await conn.execute(text(statement))
    with pytest.raises(Exception, match=r"append-only|permission denied"):
        async with db.transaction(Scope.tenant(tenant(owner))) as session:
            await session.execute(text("DELETE FROM audit_heads"))
    assert (await owner.get("/audit-events/verify")).json() == before
    await owner.post("/api-keys", {"name": "after"})  # appending still moves the head forward
    after = (await owner.get("/audit-events/verify")).json()
    assert after["ok"] is True and after["events"] == 3


async def test_a_forged_checkpoint_is_reported(admin: Api, db: Database, settings: Settings) -> None:
    owner = await _tenant_with_events(admin, 2)
    await checkpoint_round(db, settings)
    verified = (await owner.get("/audit-events/verify")).json()
    assert verified["ok"] is True and verified["checkpoint_ok"] is True and verified["checkpoints"] == 1

    path = settings.checkpoints_path / f"{owner.tenant_id}.jsonl"
    genuine = json.loads(path.read_text().splitlines()[-1])
    with path.open("a") as out:  # a head the service never signed, under its genuine signature
        out.write(json.dumps({**genuine, "seq": 3, "head_hash": "f" * 64}) + "\n")
    reported = (await owner.get("/audit-events/verify")).json()
    assert reported["ok"] is False and reported["checkpoint_ok"] is False and reported["broken_seq"] == 3
    assert "checkpoint line 2" in reported["problem"] and "bad signature" in reported["problem"]
    result = await dpa(settings, "audit", "verify", "--tenant", owner.tenant_id or "")
    assert result.exit_code == 1 and "bad signature" in result.output


# --- Tenants fetch their checkpoints ---------------------------------------------------------------------------


async def test_each_tenant_fetches_its_own_signed_checkpoints_and_staff_any(
    admin: Api, db: Database, settings: Settings
) -> None:
    mine, other = await admin.new_tenant(), await admin.new_tenant()
    legal, sales = await admin.new_staff("legal"), await admin.new_staff("sales")
    await mine.post("/api-keys", {"name": "k"})
    await checkpoint_round(db, settings)
    await mine.post("/api-keys", {"name": "k2"})
    report = await checkpoint_round(db, settings)
    assert report.written == 1  # only the chain that moved
    listed = await mine.all("/audit-events/checkpoints")
    assert [(c["chain"], c["tenant_id"], c["seq"]) for c in listed] == [
        (mine.tenant_id, mine.tenant_id, s) for s in (2, 3)
    ]
    assert listed[-1]["head_hash"] == (await mine.get("/audit-events/verify")).json()["head"]
    key = (await mine.get("/audit-events/checkpoints/key")).json()
    assert key["algorithm"] == "ECDSA-P256-SHA256" and key["signed_fields"] == [
        "at",
        "chain",
        "head_hash",
        "seq",
        "tenant_id",
    ]
    keys = load_public_keys([key["public_key_pem"].encode()])
    assert list(keys) == [key["key_id"]] and all(c["key_id"] == key["key_id"] for c in listed)
    assert all(signature_problem(Checkpoint.parse(c), keys) is None for c in listed)
    first = (await mine.get("/audit-events/checkpoints", limit=1)).json()
    assert [c["seq"] for c in first["items"]] == [2] and first["next_cursor"]

    await assert_isolated(
        mine,
        other,
        [Probe("checkpoints", mine.tenant_id or "", lists=[f"/audit-events/checkpoints?tenant_id={mine.tenant_id}"])],
    )
    assert await legal.all("/audit-events/checkpoints", tenant_id=mine.tenant_id or "") == listed
    assert {c["chain"] for c in await legal.all("/audit-events/checkpoints")} == {"platform"}
    assert (await sales.get("/audit-events/checkpoints")).status_code == 403
    assert (await mine.get("/audit-events/checkpoints/key", key_id="0" * 64)).status_code == 404


# --- Offline ---------------------------------------------------------------------------------------------------


def _offline(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DPA_VAR_DIR", "DATABASE_URL", "DPA_CHECKPOINT_DIR"}}
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**env, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


def _readme_openssl_recipe() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Audit checkpoints\n", 1)[1].split("\n## ", 1)[0]
    return next(block for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL) if "openssl" in block)


def test_checkpoints_verify_offline_with_the_documented_commands(tmp_path: Path) -> None:
    signer = signer_for_seal(SealConfig(keys_dir=tmp_path / "keys"))
    files = CheckpointFiles(tmp_path / "var" / "checkpoints")
    chain = str(uuid.uuid4())
    files.record_moved([Head(chain, chain, 3, "a" * 64)], signer, "2026-12-03T10:00:00.123456Z")
    files.record_moved([Head(chain, chain, 5, "b" * 64)], signer, "2026-12-03T10:10:00.654321Z")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    genuine = _offline(elsewhere, "audit", "verify-checkpoints", str(files.file_of(chain)))
    assert genuine.returncode == 0, genuine.stdout + genuine.stderr
    assert f"2 checkpoints: every signature verifies (key {signer.key_id})" in genuine.stdout
    assert list(elsewhere.iterdir()) == []  # no database, no var/: it needs nothing but the file and a key

    recipe = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _readme_openssl_recipe()], cwd=tmp_path, env={**os.environ, "TENANT": chain},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert recipe.returncode == 0 and "Verified OK" in recipe.stdout, recipe.stdout + recipe.stderr

    # A saved API page with one altered head and one checkpoint signed by another key, checked against the pinned
    # certificate (in this process: the command was shown above to need nothing of the service's).
    items = [json.loads(line) for line in files.file_of(chain).read_text().splitlines()]
    items[1]["head_hash"] = "c" * 64
    stranger = signer_for_seal(SealConfig(keys_dir=tmp_path / "other-keys"))
    items.append(stranger.sign(Checkpoint(chain, chain, 6, "d" * 64, "2026-12-03T10:20:00Z")).as_dict())
    page = tmp_path / "checkpoints.json"
    page.write_text(json.dumps({"items": items, "next_cursor": None}))
    pinned = tmp_path / "key.pem"
    pinned.write_text(signer.certificate_pem)
    forged = CliRunner().invoke(main, ["audit", "verify-checkpoints", str(page), "--cert", str(pinned)])
    assert forged.exit_code == 1, forged.output
    assert f"item 2 ({chain} seq 5): bad signature" in forged.stdout
    assert f"item 3 ({chain} seq 6): signed by an unknown key" in forged.stdout
    assert "item 1 " not in forged.stdout and "2 problems in 3 checkpoints" in forged.stdout


async def test_the_server_checkpoints_the_chains_before_it_serves(client: object, settings: Settings) -> None:
    # Loading the reference data on a fresh start has moved the platform chain; later rounds follow housekeeping.
    lines = (settings.checkpoints_path / "platform.jsonl").read_text().splitlines()
    written = Checkpoint.parse(json.loads(lines[0]))
    assert len(lines) == 1 and written.chain == "platform" and written.seq >= 1
    assert (settings.checkpoints_path / "keys" / f"{written.key_id}.pem").is_file()


def test_processes_sharing_the_directory_take_turns_and_never_tear_a_line(tmp_path: Path) -> None:
    signer = signer_for_seal(SealConfig(keys_dir=tmp_path / "keys"))
    directory = tmp_path / "checkpoints"
    first, second = CheckpointFiles(directory), CheckpointFiles(directory)  # each process has its own
    with first.locked() as held, second.locked() as also:
        assert held is True and also is False  # the second one's round is skipped, not run alongside
    chains = [str(uuid.uuid4()) for _ in range(10)]
    moved = {"seq": 0}

    def rounds(files: CheckpointFiles) -> None:
        for _ in range(20):
            with files.locked(wait=10) as turn:
                assert turn
                moved["seq"] += 1  # the chains move; whoever holds the lock reads where they are
                heads = [Head(chain, chain, moved["seq"], f"{moved['seq']:064x}") for chain in chains]
                assert not files.record_moved(heads, signer, "2026-12-03T10:00:00Z").problems

    workers = [threading.Thread(target=rounds, args=(files,)) for files in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for chain in chains:
        lines = list(first.read(chain))
        assert [found.seq for _, found in lines if isinstance(found, Checkpoint)] == list(range(1, 41))
    assert CheckpointFiles(directory).last(chains[0]).seq == 40  # type: ignore[union-attr]
