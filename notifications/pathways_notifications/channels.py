"""Delivery channels: SMTP email, a file drop folder for integration gateways, the console.

Each `send` raises `ChannelError` when the message was not accepted; the dispatcher then
retries with backoff. The Message-ID is stable per message, so a recipient can recognise a
duplicate after an at-least-once re-send.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import sys
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from pathways_engine.store.outbox import Message


class ChannelError(Exception):
    """The channel did not accept the message; it may be retried."""


class Channel(Protocol):
    def send(self, message: Message) -> None:
        """Deliver or raise ChannelError."""
        ...


def to_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.address or "undisclosed-recipients:;"
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    email["Date"] = format_datetime(message.created_at)
    email["X-Pathways-Instance"] = message.instance_id
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


@dataclass(frozen=True)
class SmtpChannel:
    host: str
    port: int = 25
    sender: str = "pathways@localhost"
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def send(self, message: Message) -> None:
        if not message.address:
            raise ChannelError(f"message {message.id} has no email address")
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(to_email(message, self.sender))
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"SMTP {self.host}:{self.port}: {exc}") from None


@dataclass(frozen=True)
class FileDropChannel:
    """One .eml and one .json per message, each written atomically (temp file + rename)."""

    folder: Path
    sender: str = "pathways@localhost"

    def send(self, message: Message) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stem = f"{message.id:010d}-{message.message_id.strip('<>').split('@')[0]}"
            meta = {
                "id": message.id, "message_id": message.message_id, "instance": message.instance_id,
                "role": message.role, "party": message.party, "address": message.address,
                "language": message.language, "template": message.template,
                "subject": message.subject, "personal_data": message.personal_data,
                "legal_basis": message.legal_basis,
            }
            _atomic_write(self.folder / f"{stem}.eml", bytes(to_email(message, self.sender)))
            _atomic_write(self.folder / f"{stem}.json",
                          json.dumps(meta, ensure_ascii=False, indent=2).encode("utf-8"))
        except OSError as exc:
            raise ChannelError(f"file drop {self.folder}: {exc.strerror}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ConsoleChannel:
    """Prints the message (the demo's channel); never fails."""

    def send(self, message: Message) -> None:
        to = message.party or message.role
        sys.stdout.write(f"  ✉ to {to} ({message.role}): {message.subject}\n")
