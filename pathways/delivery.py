"""Channel configuration from the environment (secrets never come from files or flags)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pathways_engine.errors import ConfigError
from pathways_notifications import DeliveryReport
from pathways_notifications import deliver
from pathways_notifications.channels import Channel
from pathways_notifications.channels import ConsoleChannel
from pathways_notifications.channels import FileDropChannel
from pathways_notifications.channels import SmtpChannel
from pathways_notifications.delivery import Policy

from .app import App


def channels_from_env() -> dict[str, Channel]:
    """PATHWAYS_SMTP_HOST/_PORT/_SECURITY/_USER/_PASSWORD/_FROM, PATHWAYS_DROP_DIR."""
    env = os.environ
    sender = env.get("PATHWAYS_SMTP_FROM", "pathways@localhost")
    channels: dict[str, Channel] = {"console": ConsoleChannel(),
                                    "file": FileDropChannel(Path(env.get("PATHWAYS_DROP_DIR",
                                                                         "outbox-drop")), sender)}
    if env.get("PATHWAYS_SMTP_HOST"):
        security = env.get("PATHWAYS_SMTP_SECURITY", "none")
        if security not in {"none", "starttls", "tls"}:
            raise ConfigError("PATHWAYS_SMTP_SECURITY must be none, starttls or tls")
        try:
            port = int(env.get("PATHWAYS_SMTP_PORT", "25"))
        except ValueError:
            raise ConfigError("PATHWAYS_SMTP_PORT must be a number") from None
        channels["email"] = SmtpChannel(env["PATHWAYS_SMTP_HOST"], port, sender, security,
                                        env.get("PATHWAYS_SMTP_USER"),
                                        env.get("PATHWAYS_SMTP_PASSWORD"))
    return channels


def policy_from_env() -> Policy:
    """PATHWAYS_DELIVERY_GIVE_UP: how long a message is retried before it is a dead letter."""
    import datetime as dt

    from pathways_engine.rules.durations import parse_duration

    text = os.environ.get("PATHWAYS_DELIVERY_GIVE_UP")
    if not text:
        return Policy()
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"PATHWAYS_DELIVERY_GIVE_UP: {exc}") from None
    if duration.unit not in {"minutes", "hours", "days", "weeks"}:
        raise ConfigError("PATHWAYS_DELIVERY_GIVE_UP: give minutes, hours, days or weeks "
                          f"(e.g. '3 days'), not {duration}")
    per_unit = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[duration.unit]
    return Policy(give_up_after=dt.timedelta(seconds=duration.amount * per_unit))


def deliver_pending(app: App, on_message: Callable[[], object] | None = None
                    ) -> DeliveryReport:
    """Deliver what is due now; `on_message` is told after each message tried."""
    return deliver(app.may("write").db, channels_from_env(), app.clock.now(),
                   policy=policy_from_env(), on_message=on_message)
