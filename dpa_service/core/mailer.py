"""Sending e-mail: appended to a mail log under `$DPA_VAR_DIR/mail/` by default, through SMTP when SMTP_URL is set.

SMTP_URL looks like `smtp://user:password@host:587` (STARTTLS) or `smtps://user:password@host:465`.
Notifications become `MailDelivery` rows when the outbox is fanned out, and the worker sends them with the same
retries, backoff and dead-letter as webhooks, so an SMTP outage delays an e-mail instead of losing it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio

from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.settings import Settings

logger = logging.getLogger("dpa_service.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
        self.sender = settings.mail_from
        self.log_path = settings.var_dir / "mail" / "outbox.jsonl"

    async def send(self, mail: Mail) -> None:
        await anyio.to_thread.run_sync(self._send, mail)

    def _send(self, mail: Mail) -> None:
        if not self.smtp_url:
            self._log(mail)  # the log is the mailbox: a failure here is a failed send
            return
        self._smtp(mail)
        try:
            self._log(mail)
        except OSError:  # sent already: a retry would send it twice
            logger.exception("e-mail to %s was sent but could not be written to the mail log", mail.to)

    def _log(self, mail: Mail) -> None:
        """Without SMTP the log is the mailbox, so it keeps the body (links included) readable by us alone;
        with SMTP it is only a record of what was sent, and keeps no body: links in it are secrets."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps(
            {
                "at": rfc3339(utcnow()),
                "from": self.sender,
                "to": mail.to,
                "subject": mail.subject,
                "body": None if self.smtp_url else mail.body,
                "smtp": bool(self.smtp_url),
            }
        )
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # several workers append to one file
            handle.write(line + "\n")

    def _smtp(self, mail: Mail) -> None:
        url = urlsplit(self.smtp_url or "")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        message.set_content(mail.body)
        smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        host = url.hostname or "localhost"
        with smtp_class(host, url.port or (465 if url.scheme == "smtps" else 25), timeout=15) as smtp:
            if url.scheme == "smtp":
                smtp.ehlo()  # the server's extensions are only known after EHLO
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif host not in {"localhost", "127.0.0.1", "::1"}:
                    raise smtplib.SMTPNotSupportedError(f"{host} offers no STARTTLS: refusing to send in clear")
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)


def read_log(var_dir: Path) -> list[dict[str, str]]:
    path = var_dir / "mail" / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
