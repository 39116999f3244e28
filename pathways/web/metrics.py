"""Prometheus exposition, read from the database at scrape time (prometheus_client's text
format), so every server process and the sweep report the same numbers."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class _Snapshot:
    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Any:
        from pathways_engine.store import gauges

        with self.app.db.reading() as connection:
            found = gauges.read(connection, self.app.clock.now())
        yield GaugeMetricFamily(
            "pathways_timer_lag_seconds", "How late the oldest due, unfired wake-up is (0: the "
            "sweep keeps up).", value=found["timer_lag_seconds"])
        yield GaugeMetricFamily("pathways_timers_due", "Wake-ups due and not yet fired.",
                                value=found["timers_due"])
        backlog = GaugeMetricFamily("pathways_outbox_messages", "Messages by status and "
                                    "channel (failed: dead letters).",
                                    labels=["status", "channel"])
        for status, channel, n in found["outbox"]:
            backlog.add_metric([status, channel], n)
        yield backlog
        running = GaugeMetricFamily("pathways_instances", "Pathway instances by status.",
                                    labels=["status"])
        for status, n in found["instances"]:
            running.add_metric([status], n)
        yield running
        steps = CounterMetricFamily("pathways_steps", "Steps recorded in the audit trail "
                                    "(rate() gives steps per second).", labels=["kind"])
        for kind, n in found["steps"]:
            steps.add_metric([kind], n)
        yield steps


def exposition(app: Any) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(app))
    return generate_latest(registry), CONTENT_TYPE_LATEST
