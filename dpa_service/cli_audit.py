"""The `dpa audit` and `dpa integrity` commands: the hash chains against their signed checkpoints, and every stored
document's hash and seal (run after a restore)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from dpa_service.audit.parallel import ParallelVerifier
from dpa_service.cli_support import _cannot_verify, _count, _migrate, _with_db
from dpa_service.core.db import Database
from dpa_service.core.settings import get_settings

_PROCESSES_HELP = "Processes that walk the audit chains at once [default: the CPU count]."


@click.group(name="audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.option("--tenant", "tenant_id", type=click.UUID, default=None, help="Only this tenant's chain.")
@click.option(
    "--cert",
    "certs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also trust checkpoints signed by this certificate or public key (PEM): a seal key used before a rotation.",
)
@click.option("--processes", type=click.IntRange(min=1), default=None, help=_PROCESSES_HELP)
def audit_verify(tenant_id: uuid.UUID | None, certs: tuple[Path, ...], processes: int | None) -> None:
    """Verify the platform chain and every tenant's chain, each against its signed checkpoints in
    DPA_CHECKPOINT_DIR (exit code 1 at the first break: chain, seq, and the expected and found hashes).

    A chain counts as checkpointed when its file is there, even if its tenant is gone from the database.
    Checkpoints are trusted only when signed by the seal's certificate (DPA_SEAL_CERT_PATH, else
    $DPA_VAR_DIR/keys/) or one named with --cert.
    """
    from dpa_service.audit.anchoring import seal_public_keys
    from dpa_service.audit.checkpoint_files import CheckpointFiles
    from dpa_service.documents.seal import SealConfig
    from dpa_service.tenants.services import all_ids

    settings = get_settings()
    files = CheckpointFiles(settings.checkpoints_path)
    keys = seal_public_keys(SealConfig.from_settings(settings), certs)
    checkpointed = files.chains()
    if not checkpointed:
        click.echo(
            f"no checkpoints in {files.directory}: each chain is checked against itself only "
            "(a chain rewritten with every later hash recomputed would pass)",
            err=True,
        )

    async def work(db: Database) -> int:
        if tenant_id is not None:
            chains = verifier.verify_chains(db, [tenant_id], files, keys, everything=False)
        else:
            chains = verifier.verify_chains(db, await all_ids(db), files, keys)
        broken = 0
        async for result in chains:
            if result.ok:
                matched = f", matches {_count(result.checkpoints, 'checkpoint')}" if result.checkpoints else ""
                status = f"ok{matched}"
            else:
                broken += 1
                status = f"BROKEN at seq {result.broken_seq}: {result.problem}"
            click.echo(f"{result.chain}: {_count(result.events, 'event')}, {status}")
        return broken

    with ParallelVerifier(settings.database, processes) as verifier:
        broken = _with_db(work)
    if broken:
        sys.exit(1)


@click.group(name="integrity")
def integrity_group() -> None:
    """Whole-service evidence checks."""


@integrity_group.command("check")
@click.option("--jobs", type=int, default=None, help="Seal checks run at once [default: the CPU count, at most 4].")
@click.option("--processes", type=click.IntRange(min=1), default=None, help=_PROCESSES_HELP)
def integrity_check(jobs: int | None, processes: int | None) -> None:
    """Check every stored document's hash and seal, every audit chain and the webhook secrets; run it after a
    restore. Prints a JSON summary with the first problems; exit code 1 on any problem, 3 when there is no database
    to check. Only reads: it never makes a key, a database or a directory."""
    from dpa_service import integrity

    settings = get_settings()
    database = settings.database
    sqlite_file = Path(make_url(database.url).database or "") if database.is_sqlite else None
    if sqlite_file is not None and not sqlite_file.is_file():
        click.echo(
            f"cannot check: no database at {sqlite_file}; set DPA_VAR_DIR (or DATABASE_URL) to the service's", err=True
        )
        sys.exit(3)
    with ParallelVerifier(database, processes) as chains:
        report = _with_db(
            lambda db: integrity.check(
                db, settings, jobs=jobs, chains=chains, progress=lambda step: click.echo(f"checking {step}", err=True)
            )
        )
    click.echo(json.dumps(report.summary(), indent=2))
    sys.exit(0 if report.ok else 1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Write a signed checkpoint now for every chain that moved since its last one (the server does this every
    ten minutes), into DPA_CHECKPOINT_DIR; exit 1 if a chain's head is behind its last checkpoint (rewound)."""
    from dpa_service.audit.anchoring import checkpoint_chains, signer_for_seal
    from dpa_service.audit.checkpoint_files import CheckpointFiles
    from dpa_service.core.registry import processor
    from dpa_service.documents.seal import SealConfig

    _migrate()
    settings = get_settings()
    files = CheckpointFiles(settings.checkpoints_path)
    signer = signer_for_seal(SealConfig.from_settings(settings, organization=processor()["legal_name"]))
    report = _with_db(lambda db: checkpoint_chains(db, files, signer, wait=30.0))
    if report.skipped:
        click.echo(f"another process kept {files.directory} locked for 30 s; try again", err=True)
        sys.exit(2)
    for problem in report.problems:
        click.echo(f"refused: {problem}", err=True)
    click.echo(f"checkpointed {_count(report.written, 'chain')} ({report.unchanged} unchanged) in {files.directory}")
    if report.problems:
        sys.exit(1)


@audit_group.command("verify-checkpoints")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cert",
    "certs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The certificate or public key (PEM) to trust [default: every key in the keys/ directory beside PATH].",
)
def audit_verify_checkpoints(path: Path, certs: tuple[Path, ...]) -> None:
    """Check signed checkpoints offline, without the service or its database: a `<chain>.jsonl` file from the
    checkpoint directory, or a saved `GET /api/v1/audit-events/checkpoints` response.

    Exit 0 when every signature verifies and no seq of a chain has two different heads, 1 otherwise, 3 when
    there is no key to check against. Pin the key you trust with --cert (the certificate_pem of
    `GET /api/v1/audit-events/checkpoints/key`, or the seal certificate of an executed DPA).
    """
    from dpa_service.audit.checkpoint_files import checkpoints_in
    from dpa_service.audit.checkpoints import load_public_keys, signature_problem

    key_files = list(certs) or sorted((path.parent / "keys").glob("*.pem"))
    keys = load_public_keys(p.read_bytes() for p in key_files)
    if not keys:
        _cannot_verify(f"no key beside {path} (keys/*.pem)", "name the certificate with --cert PATH")
    problems: list[str] = []
    heads: dict[tuple[str, int], tuple[str, str]] = {}
    count = 0
    for label, found in checkpoints_in(path):
        if isinstance(found, str):
            problems.append(f"{label}: {found}")
            continue
        count += 1
        problem = signature_problem(found, keys)
        if problem:
            problems.append(f"{label} ({found.chain} seq {found.seq}): {problem}")
            continue
        seen = heads.setdefault((found.chain, found.seq), (found.head_hash, label))
        if seen[0] != found.head_hash:  # two signed heads for one seq: the chain was forked or rewritten
            problems.append(f"{label} ({found.chain} seq {found.seq}): a different head than {seen[1]}")
    for problem in problems:
        click.echo(problem)
    trusted = ", ".join(sorted(keys))
    if problems:
        click.echo(f"{_count(len(problems), 'problem')} in {_count(count, 'checkpoint')} (trusted keys: {trusted})")
        sys.exit(1)
    click.echo(f"{_count(count, 'checkpoint')}: every signature verifies (key {trusted})")
