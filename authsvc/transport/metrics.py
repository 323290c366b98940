"""The server's Prometheus metrics, in a registry of its own (two servers in one process never collide).

With several workers (authsvc/app/workers.py) prometheus_client's multiprocess mode is on in each worker
(PROMETHEUS_MULTIPROC_DIR, set by the parent): every value lives in that folder's files, and the parent's
`WorkersMetrics` sums them for its one metrics listener.

RPC counts and latencies come from the observing interceptor; domain outcomes arrive through the domain's
`Observer` interface (authsvc.domain.observe), named by the audit events. Throttled logins are counted
from the answer's status (RESOURCE_EXHAUSTED on Login), since throttling refuses before any audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from authsvc.domain import audit
from authsvc.domain.courier import MAIL_ABANDONED, MAIL_FAILED, MAIL_QUEUED, MAIL_SENT
from authsvc.domain.observe import STORE_UNAVAILABLE
from authsvc.domain.throttling import LOGIN_THROTTLED

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics", "WorkersMetrics"]

# Logins last about a bcrypt check (a quarter second at cost 12); refreshes a few milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Audit event -> (metric, label) for the outcomes operators watch.
_LOGIN_OUTCOMES = {
    audit.LOGIN: "success",
    audit.LOGIN_FAILED: "invalid_credentials",
    LOGIN_THROTTLED: "throttled",
    audit.LOGIN_DISABLED: "account_disabled",
}
_REFRESH_OUTCOMES = {
    audit.REFRESH: "rotated",
    audit.REFRESH_GRACE: "grace_replay",
    audit.REUSE_DETECTED: "reuse_detected",
}
# Revocation reasons as the session rows record them (authsvc.domain.service and .sessions).
_REVOKE_REASONS = {
    audit.LOGOUT: "logout",
    audit.LOGOUT_ALL: "logout_all",
    audit.REUSE_DETECTED: "reuse_detected",
    audit.SESSION_REVOKED: "revoked_by_user",
    audit.PASSWORD_RESET: "password_reset",
    audit.PASSWORD_CHANGED: "password_changed",
    audit.ACCOUNT_DISABLED: "account_disabled",
}


# The courier's outcomes (authsvc/domain/courier.py) -> the counter of each.
_MAIL_EVENTS = {
    MAIL_QUEUED: "mails_queued",
    MAIL_SENT: "mails_sent",
    MAIL_FAILED: "mail_attempts_failed",
    MAIL_ABANDONED: "mails_abandoned",
}


class ServerMetrics:
    """Every metric of one server; implements the domain's `Observer`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._rpc_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "authsvc_grpc_requests",
            "RPCs answered, by method and status code",
            ["rpc", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "authsvc_grpc_request_duration_seconds",
            "Time from the call reaching the handler to its answer, by method",
            ["rpc"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.logins = Counter(
            "authsvc_logins", "Login attempts by outcome", ["outcome"], registry=self.registry
        )
        self.refreshes = Counter(
            "authsvc_refreshes", "Refresh attempts by outcome", ["outcome"], registry=self.registry
        )
        self.revoked = Counter(
            "authsvc_sessions_revoked", "Sessions revoked, by reason", ["reason"], registry=self.registry
        )
        self.database_errors = Counter(
            "authsvc_database_errors",
            "Store operations that failed because the database was unreachable or timed out",
            ["source"],
            registry=self.registry,
        )
        # multiprocess_mode: how the parent of several workers joins the workers' values (ignored alone).
        self.bcrypt_queue = Gauge(
            "authsvc_bcrypt_queue_depth",
            "Password hashes waiting for a free bcrypt thread",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.mails_queued = Counter(
            "authsvc_mails_queued", "Mails written to the outbox by this server", registry=self.registry
        )
        self.mails_sent = Counter(
            "authsvc_mails_sent", "Mails the mail server took from this server", registry=self.registry
        )
        self.mail_attempts_failed = Counter(
            "authsvc_mail_attempts_failed",
            "Failed attempts to send a mail (each is retried, unless the mail is abandoned)",
            registry=self.registry,
        )
        self.mails_abandoned = Counter(
            "authsvc_mails_abandoned",
            "Mails given up: refused for good by the mail server, or still failing 3 days after queued",
            registry=self.registry,
        )
        self.mail_outbox_pending = Gauge(
            "authsvc_mail_outbox_pending",
            "Mails still to send, across every replica, as counted after this server's last round",
            registry=self.registry,
            multiprocess_mode="livemax",  # every worker counts the same outbox
        )
        self._watched: list[tuple[Gauge, Callable[[], int]]] = []
        # Every label value exists from the start at 0, so dashboards and alerts never see a gap.
        for outcome in _LOGIN_OUTCOMES.values():
            self.logins.labels(outcome)
        for outcome in _REFRESH_OUTCOMES.values():
            self.refreshes.labels(outcome)
        for reason in _REVOKE_REASONS.values():
            self.revoked.labels(reason)
        for source in ("rpc", "health_check"):
            self.database_errors.labels(source)

    def watch_bcrypt_queue(self, depth: Callable[[], int]) -> None:
        self.bcrypt_queue.set_function(lambda: float(depth()))
        self._watched.append((self.bcrypt_queue, depth))

    def watch_mail_outbox(self, pending: Callable[[], int]) -> None:
        self.mail_outbox_pending.set_function(lambda: float(pending()))
        self._watched.append((self.mail_outbox_pending, pending))

    def store_watched(self) -> None:
        """Write the watched gauges' current values: a worker's parent reads its files, never its
        functions, so a worker calls this now and then (a lone server need not)."""
        for gauge, read in self._watched:
            gauge.set(float(read()))

    def observe(self, event: str, count: int) -> None:
        """The domain's Observer: count an audit event (or a store outage) into the outcome metrics."""
        if event in _LOGIN_OUTCOMES:
            self.logins.labels(_LOGIN_OUTCOMES[event]).inc(count)
        if event in _REFRESH_OUTCOMES:
            self.refreshes.labels(_REFRESH_OUTCOMES[event]).inc(count)
        if event in _REVOKE_REASONS:
            self.revoked.labels(_REVOKE_REASONS[event]).inc(count)
        if event == STORE_UNAVAILABLE:
            self.database_errors.labels("rpc").inc(count)
        if event in _MAIL_EVENTS:
            counter: Counter = getattr(self, _MAIL_EVENTS[event])
            counter.inc(count)

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        # `labels()` takes a lock and builds a key on each call: look each (rpc, code) series up once.
        # The set stays small: registered methods times status codes.
        series = self._rpc_series.get((rpc, code))
        if series is None:
            series = (self.requests.labels(rpc, code), self.latency.labels(rpc))
            self._rpc_series[(rpc, code)] = series
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this server's registry."""
        return generate_latest(self.registry)


class WorkersMetrics:
    """What the parent of several workers serves: every worker's metrics, read from the multiprocess
    folder at each scrape (counters and histograms summed; gauges as their multiprocess_mode says)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(self.registry, path=str(folder))  # type: ignore[no-untyped-call]

    def worker_exited(self, pid: int) -> None:
        """Drop a dead worker's live gauges (its counts stay: totals never go backwards)."""
        multiprocess.mark_process_dead(pid, str(self.folder))  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        return generate_latest(self.registry)
