"""The `dpa` command: serve, migrate, bootstrap, demo data, document verification; `dpa audit` and `dpa integrity`
live in cli_audit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from dpa_service import migrate
from dpa_service.cli_audit import audit_group, integrity_group
from dpa_service.cli_support import _cannot_verify, _count, _migrate, _with_db
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict
from dpa_service.core.identity import Actor, Role
from dpa_service.core.settings import Settings, clear_settings_cache, get_settings
from dpa_service.logs import configure as configure_logging
from dpa_service.logs import log_config


@click.group()
def main() -> None:
    """DPA service: self-service GDPR Data Processing Agreements."""


# Longer than a load balancer's idle timeout (60 s on the common ones) and a client pool's keep-alive: the side
# that closes an idle connection should be the client, or a request sent on it as the server closes it fails
# (uvicorn's default of 5 s made that a visible error under steady load).
KEEP_ALIVE_SECONDS = 75


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Apply migrations, then serve the API."""
    import uvicorn

    # Links e-mailed to signers point here unless PUBLIC_BASE_URL says otherwise (never at a Host header).
    wildcard = host in {"0.0.0.0", "::"}  # noqa: S104 - recognising the operator's choice, not binding
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{'localhost' if wildcard else host}:{port}")
    clear_settings_cache()
    _migrate()
    uvicorn.run(
        "dpa_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The client's address behind a proxy is DPA_TRUSTED_PROXIES' business (http.proxies): uvicorn's own
        # rewriting would trust X-Forwarded-For from 127.0.0.1 whatever the setting says.
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # asyncio's loop even where uvloop is installed: the render pool watches its workers' pipes with
        # loop.add_reader, which misfired under uvloop (a worker taken for dead as it started). httptools: C parsing.
        loop="asyncio",
        http="httptools",
        log_config=log_config(get_settings()),
    )


@main.command("docusign-standin")
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--dir", "directory", default="./var/docusign-standin", show_default=True, type=click.Path())
@click.option("--hmac-key", "hmac_keys", multiple=True, default=["standin-connect-key"], show_default=True)
def docusign_standin(port: int, directory: str, hmac_keys: tuple[str, ...]) -> None:
    """Serve a local DocuSign stand-in (HTTPS, a test CA made now) for the demo and tests; prints the DOCUSIGN_*
    settings that point the service at it. Envelopes "e-mailed" to signers are listed at /inbox."""
    from pathlib import Path

    from dpa_service.agreements.docusign_standin import serve

    standin = serve(Path(directory), port, hmac_keys)
    for name, value in standin.environment().items():
        click.echo(f"export {name}={value}")
    click.echo(f"# signers' inbox: {standin.base_uri}/inbox")
    try:
        standin.thread.join()
    except KeyboardInterrupt:
        standin.stop()


@main.command()
@click.option("--every", default=1.0, show_default=True, help="Seconds between rounds when idle.")
@click.option("--concurrency", default=4, show_default=True, help="Queued jobs run at once (with REDIS_URL).")
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve this worker's delivery counters for Prometheus on 127.0.0.1:PORT/metrics (loopback only).",
)
def worker(every: float, concurrency: int, metrics_port: int | None) -> None:
    """Deliver the outbox (e-mail and signed webhooks) in its own process; run several if you like.

    With REDIS_URL set, deliveries go through a Redis-backed SAQ queue that all workers share."""
    from dpa_service.core.mailer import Mailer
    from dpa_service.core.secrets import load_app_secret
    from dpa_service.notifications.queue import run_forever

    settings = get_settings()
    configure_logging(settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    for chatty in ("saq", "httpx"):  # a line per job or request drowns what an operator needs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    _migrate()
    if settings.docusign is not None:  # envelope creation is an outbox job: this worker runs it too
        from dpa_service.agreements import docusign

        base = settings.public_base_url or "http://127.0.0.1:8000"
        docusign.install(docusign.DocuSign.configure(settings.docusign, base, settings.signing_link_days))

    def report(handled: int, moved: int) -> None:
        verb = "queued" if settings.redis_url else "attempted"
        # A log line, not a print: in JSON like every other line the worker writes (DPA_LOG_FORMAT).
        logging.getLogger("dpa_service.worker").info(
            "outbox: %s fanned out, %s %s",
            _count(handled, "message"),
            _count(moved, "delivery", "deliveries"),
            verb,
            extra={"fanned_out": handled, verb: moved},
        )

    async def loop() -> None:
        main_task = asyncio.current_task()
        assert main_task is not None
        for signum in (signal.SIGINT, signal.SIGTERM):  # stop between rounds; a batch in flight is finished
            asyncio.get_running_loop().add_signal_handler(signum, main_task.cancel)
        db = Database(settings.database)
        await _install_execution(settings)
        try:
            await run_forever(
                db,
                Mailer(settings),
                load_app_secret(settings),
                allow_private=settings.webhook_allow_private,
                redis_url=settings.redis_url,
                queue_name=settings.queue_name,
                every=every,
                concurrency=concurrency,
                on_round=report,
            )
        finally:
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(loop())


async def _install_execution(settings: Settings) -> None:
    """Queued countersignatures (`Prefer: respond-async`) and drafts to render ahead of their signature requests
    are outbox jobs: this worker renders (and seals) them too, in its own document pool (started on the first one),
    sharing what it renders through Redis, with the seal key the app uses (the same `DPA_VAR_DIR` keys, or the
    configured key or PKCS#12 file: a worker on another host needs the same one)."""
    from dpa_service import reactions
    from dpa_service.agreements import deferred_execution, prerender
    from dpa_service.core.registry import processor
    from dpa_service.core.secrets import load_app_secret
    from dpa_service.documents.renderer import Renderer, document_pool
    from dpa_service.documents.seal import Seal, SealConfig
    from dpa_service.documents.shared_cache import shared_cache

    renderer = Renderer(
        document_pool(settings.render_processes),
        timeout=settings.render_timeout_seconds,
        shared=shared_cache(settings.redis_url, load_app_secret(settings)),
    )
    prerender.install(renderer)  # needs no key: drafts ready for signature are rendered here whatever happens
    seal = Seal(SealConfig.from_settings(settings, organization=processor()["legal_name"]), renderer)
    try:
        await seal.load()
    except Exception:  # e-mail and webhooks go on; the app processes' own workers still execute
        logging.getLogger("dpa_service.worker").exception("no seal key: this worker executes no countersignatures")
        return
    reactions.install()  # executing publishes AgreementExecuted: the other domains react in its transaction
    deferred_execution.install(renderer, seal)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database (as the DATABASE_URL login) to REVISION."""
    migrate.upgrade(get_settings(), revision)
    click.echo(f"database at {revision}", err=True)


@main.command()
@click.option("--email", required=True, help="The first platform admin's e-mail.")
@click.option("--name", default="Platform admin", show_default=True)
def bootstrap(email: str, name: str) -> None:
    """Create the first platform admin and print its API key as one JSON object."""
    from dpa_service.users.services import bootstrap_platform_admin

    _migrate()
    try:
        created = _with_db(lambda db: bootstrap_platform_admin(db, email, name))
    except Conflict as exc:
        click.echo(f"refused: {exc.detail}", err=True)
        sys.exit(1)
    click.echo(json.dumps(created.model_dump(mode="json")))


@main.command()
@click.option(
    "--scenario",
    type=click.Choice(["schrems-ii"]),
    default=None,
    help="Replay a history into an EMPTY database instead: schrems-ii (Privacy Shield DPAs of 2019, the 2020 "
    "invalidation, a 2021 campaign to the new SCCs, the 2023 Data Privacy Framework).",
)
def demo(scenario: str | None) -> None:
    """Seed demo staff and two demo tenants (idempotent) and print fresh keys for each; or replay a scenario."""
    _migrate()
    if scenario is None:
        from dpa_service.demo import seed_demo

        click.echo(json.dumps(_with_db(seed_demo), indent=2))
        return
    from dpa_service.demo_schrems import ScenarioRefused, run_schrems_ii

    try:
        click.echo(json.dumps(_with_db(run_schrems_ii), indent=2, default=str))
    except ScenarioRefused as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def templates() -> None:
    """DPA templates kept by legal in templates/dpa/."""


@templates.command("sync")
@click.option("--author", "author_email", default=None, help="E-mail of the legal user who authored the change.")
def templates_sync(author_email: str | None) -> None:
    """Import changed template files as new draft versions (idempotent by content hash)."""
    from dpa_service.template_versions.services import sync_from_files
    from dpa_service.users.services import staff_member

    async def work(db: Database) -> list[str]:
        actor = Actor.system("templates sync")
        if author_email:
            author = await staff_member(db, author_email, Role.LEGAL)
            if author is None:
                raise click.ClickException(f"no legal user with e-mail {author_email}")
            actor = Actor(user_id=author.id, role=author.role.value, tenant_id=None, user_agent="dpa templates sync")
        return [f"{v.key} v{v.version} ({v.sha256[:12]})" for v in await sync_from_files(db, actor)]

    _migrate()
    created = _with_db(work)
    for line in created:
        click.echo(f"new draft: {line}")
    if not created:
        click.echo("templates up to date")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cert",
    "cert_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The seal certificate (PEM) to check against [default: DPA_SEAL_CERT_PATH, else $DPA_VAR_DIR/keys/].",
)
def verify(path: Path, cert_path: Path | None) -> None:
    """Check a PDF against the executed agreements and the service seal (exit 0 verified, 1 tampered, 2 unknown,
    3 when the service's certificate or database is not where it was looked for).

    Only reads: it never makes a key, a database or a directory. Run it where the service's DPA_VAR_DIR (or
    DATABASE_URL and DPA_SEAL_CERT_PATH) point, or name the certificate with --cert.
    """
    from dataclasses import replace

    from dpa_service.agreements.verification import UNSEALED, looks_sealed, verify_document
    from dpa_service.core.exceptions import InvalidInput
    from dpa_service.core.registry import processor
    from dpa_service.documents.seal import Seal, SealConfig, certificate_path

    content = path.read_bytes()
    if not looks_sealed(content):  # no seal at all: not ours, whichever service this is
        click.echo(json.dumps(UNSEALED))
        sys.exit(2)
    settings = get_settings()
    config = SealConfig.from_settings(settings, organization=processor()["legal_name"])
    config = replace(config, cert_path=cert_path, pkcs12_path=None) if cert_path else config
    looked_for = certificate_path(config)
    if looked_for is not None and not looked_for.is_file():
        _cannot_verify(f"no seal certificate at {looked_for}", "name it with --cert PATH or set DPA_VAR_DIR")
    if looked_for is not None:
        config = replace(config, cert_path=looked_for)  # read it; never generate a key beside it
    database = settings.database
    sqlite_file = Path(make_url(database.url).database or "") if database.is_sqlite else None
    if sqlite_file is not None and not sqlite_file.is_file():
        _cannot_verify(f"no database at {sqlite_file}", "set DPA_VAR_DIR (or DATABASE_URL) to the service's")
    try:
        result = _with_db(lambda db: verify_document(db, Seal(config), content, operator=True))
    except InvalidInput as exc:  # not a readable PDF: nothing can be said about it
        result = {"status": "unknown", "detail": exc.errors[0].message if exc.errors else exc.detail}
    click.echo(json.dumps(result, default=str))
    sys.exit({"verified": 0, "tampered": 1}.get(result["status"], 2))


@main.command("expire-links")
def expire_links() -> None:
    """Close expired signing links now (the server also does this every few minutes)."""
    from dpa_service.agreements.signing import expire_overdue

    _migrate()
    click.echo(f"expired {_count(_with_db(expire_overdue), 'signing link')}")


@main.group()
def registry() -> None:
    """Reference data kept by legal in registry/."""


@registry.command("sync")
def registry_sync() -> None:
    """Check the reference data, and load the sub-processor list into its versions (idempotent).

    The service reads the catalogues from the installed package, so loading them is checking them: a
    deployment whose data is inconsistent fails here, before it serves. The sub-processor file's first load
    is list version 1; a later edit becomes a proposed change that legal publishes with notice.
    """
    from dpa_service.core import registry as reference
    from dpa_service.subprocessors.registry_sync import sync_registry

    for loader in (reference.mechanisms, reference.adequacy_decisions, reference.subprocessor_seed):
        loader.cache_clear()
    problems = reference.check()
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(
        f"{len(reference.mechanisms())} transfer mechanisms, {len(reference.adequacy_decisions())} adequacy decisions, "
        f"{len(reference.subprocessor_seed().get('items', []))} sub-processors: consistent"
    )
    _migrate()
    result = _with_db(lambda db: sync_registry(db, Actor.system("registry-sync")))
    messages = {
        "seeded": f"sub-processor list version {result.version} loaded, in force now",
        "unchanged": f"sub-processor list unchanged (version {result.version})",
        "proposed": f"sub-processor file changed: proposed change {result.change_id} awaits publication by legal "
        f"(POST /api/v1/subprocessor-changes/{result.change_id}/publish)",
        "already_proposed": f"sub-processor file already proposed as change {result.change_id}",
    }
    click.echo(messages[result.action])


main.add_command(audit_group)
main.add_command(integrity_group)


@main.command("verify-bundle")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cert",
    "cert_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The seal certificate (PEM) to trust [default: the service's, DPA_SEAL_CERT_PATH or $DPA_VAR_DIR/keys/].",
)
@click.option("--trust-bundled-key", is_flag=True, help="Check against the key inside the bundle (no pinning).")
def verify_bundle(path: Path, cert_path: Path | None, trust_bundled_key: bool) -> None:
    """Check a contract bundle: every file's SHA-256 against manifest.json, and the manifest's signature by the
    service's seal (exit 0 verified, 1 not). Only reads; never makes a key."""
    from dpa_service.audit.checkpoints import load_public_keys
    from dpa_service.contracts.bundle_check import check_bundle
    from dpa_service.core.registry import processor
    from dpa_service.documents.seal import SealConfig, certificate_path

    trusted = None
    if not trust_bundled_key:
        looked_for = cert_path or certificate_path(
            SealConfig.from_settings(get_settings(), organization=processor()["legal_name"])
        )
        if looked_for is None or not looked_for.is_file():
            _cannot_verify(f"no seal certificate at {looked_for}", "name it with --cert PATH or set DPA_VAR_DIR")
        trusted = load_public_keys([looked_for.read_bytes()])
    result = check_bundle(path, trusted)
    click.echo(json.dumps({"ok": result.ok, "files": result.files, "key_id": result.key_id,
                           "problems": result.problems}))  # fmt: skip
    sys.exit(0 if result.ok else 1)
