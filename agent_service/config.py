"""The agent service's settings: one dataclass, filled from flags or GLASSBOX_* variables
by `glassbox agent` (glassbox_cli/agent.py, which parses each value) or built directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Idle streams wait at interrupts for hours: ping to find dead peers, and let the pings
# flow without data (grpc's defaults stop after two pings and would drop such streams).
SERVER_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
)


@dataclass
class AgentConfig:
    listen: str = "127.0.0.1:50051"
    graphs: list[str] = field(default_factory=list)
    langgraph_json: str = ""
    # memory | sqlite:PATH | postgresql://…
    database: str = "sqlite:.glassbox/agent.sqlite"
    redis_url: str = ""
    log_level: str = "info"
    log_format: str = "text"  # text | json
    # Service-to-service bearer token; empty means callers need none.
    token: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # With a CA, clients must present a certificate it signed (mutual TLS).
    tls_client_ca: str = ""
    grace_s: float = 10.0
    max_receive_bytes: int = 4 * 1024 * 1024
    max_send_bytes: int = 64 * 1024 * 1024
    log_retention_s: float = 3600.0
    log_max_events: int = 100_000
    demo: bool = True  # host the built-in demo graph beside any others
    metrics_listen: str = ""  # HOST:PORT for Prometheus' GET /metrics; empty: off
    otel: bool = False  # OpenTelemetry spans per run (the `otel` extra)
    # Overload (agent_service.admission): runs executing at once (0: no bound), runs that
    # may wait for a slot beyond them, and the event-loop lag past which new runs are
    # refused (0: never).
    max_running_runs: int = 0
    max_queued_runs: int = 1000
    shed_lag_s: float = 0.5

    def check(self) -> None:
        """Refuse settings that cannot work, with what to change."""
        _host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--listen {self.listen!r} must be HOST:PORT, e.g. 127.0.0.1:50051")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.metrics_listen and not self.metrics_listen.rpartition(":")[2].isdigit():
            raise ValueError(f"--metrics-listen {self.metrics_listen!r} must be HOST:PORT")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        for flag, path in (
            ("--tls-cert", self.tls_cert),
            ("--tls-key", self.tls_key),
            ("--tls-client-ca", self.tls_client_ca),
            ("--langgraph-json", self.langgraph_json),
        ):
            if path and not Path(path).is_file():
                raise ValueError(f"{flag} {path!r}: no such file")
        if self.max_running_runs < 0 or self.max_queued_runs < 0 or self.shed_lag_s < 0:
            raise ValueError(
                "--max-running-runs, --max-queued-runs and --shed-lag must not be negative"
            )
        if self.log_format not in ("text", "json"):
            raise ValueError("--log-format must be text or json")

    def masked(self) -> dict[str, object]:
        """The settings as printed at start, with secrets and URL passwords hidden."""
        from agent_service.backends import mask_url

        shown: dict[str, object] = dict(vars(self))
        shown["token"] = "********" if self.token else ""
        shown["database"] = mask_url(self.database)
        shown["redis_url"] = mask_url(self.redis_url) if self.redis_url else ""
        return shown
