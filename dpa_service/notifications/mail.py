"""E-mail: appended to a mail log under `$DPA_VAR_DIR/mail/` by default, sent through SMTP when SMTP_URL is set.

SMTP_URL looks like `smtp://user:password@host:587` (STARTTLS) or `smtps://user:password@host:465`.
"""

from __future__ import annotations

import fcntl
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio

from dpa_service.clock import rfc3339, utcnow
from dpa_service.settings import Settings


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.smtp_url = settings.smtp_url
        self.sender = settings.mail_from
        self.log_path = settings.var_dir / "mail" / "outbox.jsonl"

    async def send(self, mail: Mail) -> None:
        await anyio.to_thread.run_sync(self._send, mail)

    def _send(self, mail: Mail) -> None:
        if self.smtp_url:
            self._smtp(mail)
        self._log(mail)

    def _log(self, mail: Mail) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "at": rfc3339(utcnow()),
                "from": self.sender,
                "to": mail.to,
                "subject": mail.subject,
                "body": mail.body,
                "smtp": bool(self.smtp_url),
            }
        )
        with self.log_path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # several workers append to one file
            handle.write(line + "\n")

    def _smtp(self, mail: Mail) -> None:
        url = urlsplit(self.smtp_url or "")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        message.set_content(mail.body)
        smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        with smtp_class(
            url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 25), timeout=15
        ) as smtp:
            if url.scheme == "smtp" and smtp.has_extn("starttls"):
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)


def read_log(var_dir: Path) -> list[dict[str, str]]:
    path = var_dir / "mail" / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
