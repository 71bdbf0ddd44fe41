"""Configuration from the environment (``ZHUQI_*``; ``DATABASE_URL`` is honoured too)."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import holiday_file
from app.db import NETWORK_TIMEOUT_MS

PLACEHOLDER_SECRET = "changethis-local-only-secret-key-0123456789"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHUQI_", env_file=".env", extra="ignore")

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = Field(
        default="sqlite:///./zhuqi.db",
        validation_alias=AliasChoices("ZHUQI_DATABASE_URL", "DATABASE_URL"),
    )
    secret_key: str = PLACEHOLDER_SECRET
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    page_limit_max: int = Field(default=200, ge=1)
    list_count_cap: int = Field(
        default=10_000,
        ge=1,
        description="A list's total counts this far and then says 'at least' (total_capped)",
    )
    transaction_attempts: int = Field(
        default=4, ge=1, le=10, description="Tries of a request whose transaction deadlocks"
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Larger request bodies get 413 before parsing"
    )
    sql_echo: bool = False
    login_rate_per_address: str = Field(
        default="30/minute", description="Log-in and sign-up attempts per client address"
    )
    login_rate_per_account: str = Field(
        default="10/minute", description="Log-in attempts per account"
    )
    api_key_usage_flush_seconds: float = Field(
        default=60, ge=0, description="How often API keys' last_used_at is written (0: at once)"
    )
    embedded_worker: bool = Field(
        default=True, description="Run queued match runs in a thread of the service process"
    )
    worker_stall_seconds: float = Field(
        default=300,
        ge=10,
        le=86_400,
        description=(
            "/readyz warns once a re-match, a queued run or a plan to prepare has waited this "
            "long for a worker"
        ),
    )
    text_warmup_providers: int = Field(
        default=50_000,
        ge=0,
        le=100_000,
        description=(
            "Vetted providers' texts each API and worker process analyzes in the background "
            "at start, so its first re-match finds them ready (0: off)"
        ),
    )
    self_capacity_expert: int = Field(
        default=3, ge=1, description="Most assignments an expert may take on by its own say"
    )
    self_capacity_platform: int = Field(
        default=30, ge=1, description="Most assignments a platform may take on by its own say"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON log lines; unset means JSON unless stderr is a terminal"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token Prometheus sends to GET /metrics (admins need none)"
    )
    metrics_bind: str = Field(
        default="127.0.0.1", description="Address a worker's metrics exporter listens on"
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay; unset: no e-mail channel")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "zhuqi@localhost"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    shutdown_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="On SIGTERM, how long a worker may finish its run before handing it back",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks target private, loopback and link-local addresses (tests)",
    )
    webhook_retry_hours: float = Field(
        default=26,
        ge=24,
        le=24 * 7,
        description="Retry a failing delivery this long, then dead-letter",
    )
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # ~70 µs of inline preparation per plan on PostgreSQL (0.7 s of a 10k publish): 500 plans
    # add ~35 ms to a publish, so a district's run is fully prepared when it commits; above
    # that the worker prepares the plans in short batches after the commit.
    plan_preparation_inline_max: int = Field(
        default=500,
        ge=0,
        description="A publish touching more plans leaves their milestones, policies and "
        "summaries to the worker (in batches after the commit)",
    )
    rematch_gather_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "After a re-match of declined requests, how long a worker lets further declines "
            "gather into one batch (their re-match waits up to this long; the first decline "
            "after a quiet spell is re-matched on the next poll; 0: every poll)"
        ),
    )
    lease_seconds: int = Field(
        default=60, ge=5, le=3600, description="How long a worker's claim on a match run lasts"
    )
    # The request path's concurrency model (see app/admission.py): at most
    # ``max_inflight_requests`` requests hold a database session at once; the pool has room for
    # each of them plus headroom, and the thread pool has a thread for each of them, so a
    # request that was admitted can always get its connection and its thread.
    db_pool_size: int = Field(
        default=20, ge=1, le=500, description="Pooled database connections per API process"
    )
    db_pool_timeout: float = Field(
        default=5.0, gt=0, le=120, description="Seconds to wait for a pooled connection (then 503)"
    )
    db_statement_timeout_ms: int = Field(
        default=15_000,
        ge=100,
        le=3_600_000,
        description="Longest statement (PostgreSQL) or lock wait (SQLite) of a request (then 503)",
    )
    db_network_timeout_ms: int = Field(
        default=NETWORK_TIMEOUT_MS,
        ge=1_000,
        le=600_000,
        description="How soon a PostgreSQL server that stopped answering (a host or network "
        "gone without closing its connections) fails the statements waiting on it (then 503)",
    )
    sqlite_checkpoint_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="SQLite: the service checkpoints its write-ahead log from a thread of its "
        "own, at most this often after a commit, instead of inside the commit that grows the "
        "log past 1,000 pages (0: SQLite's own checkpoints, in the commit)",
    )
    request_threads: int = Field(
        default=40, ge=2, le=1000, description="Worker threads that run the synchronous endpoints"
    )
    max_inflight_requests: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Requests served at once; default min(db_pool_size, request_threads)",
    )
    principal_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "How long a resolved bearer token or API key is reused without a database look-up; "
            "changes made in this process, or on PostgreSQL in any process, take effect at "
            "once, others within this time (0: looked up on every request)"
        ),
    )
    stats_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description=(
            "How long a /stats summary, and the supervision board's totals and ageing, are "
            "reused (0: computed on every call)"
        ),
    )
    board_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description=(
            "How long a page of the supervision board (GET /supervision) is reused for callers "
            "of the same regions asking the same page (0: its lists are read on every call)"
        ),
    )
    admission_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a request may queue before 503"
    )

    cookie_secure: bool = Field(
        default=True,
        description="Console session cookie only over HTTPS (browsers treat localhost as secure)",
    )
    console_session_minutes: int = Field(default=8 * 60, ge=5, le=30 * 24 * 60)

    timezone: str = Field(
        default="Asia/Shanghai",
        description="IANA time zone whose calendar dates users see and rules read",
    )

    holiday_file: Path | None = Field(
        default=None,
        description=(
            "TOML file with the State Council's holidays and adjusted working days for years "
            "chinese-calendar does not know yet (app/holiday_file.py shows the format)"
        ),
    )

    @field_validator("holiday_file")
    @classmethod
    def _readable_holidays(cls, value: Path | None) -> Path | None:
        if value is not None:
            holiday_file.load(value)  # a typo stops the start-up, not next year's deadlines
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("login_rate_per_address", "login_rate_per_account")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse(value)  # "10/minute", "100 per hour": refuse a typo at start-up
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        """Heroku-style ``postgres://`` and bare ``postgresql://`` both mean psycopg 3."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        """A forgotten secret in production would let anyone mint tokens; refuse to start."""
        if self.secret_key == PLACEHOLDER_SECRET:
            message = "ZHUQI_SECRET_KEY is the placeholder; set a real secret for production"
            if self.environment == "production":
                raise ValueError(message)
            if self.environment == "local":
                warnings.warn(message, stacklevel=2)
        if len(self.secret_key) < 32:
            raise ValueError("ZHUQI_SECRET_KEY must be at least 32 characters")
        return self

    def capacity_ceiling(self, kind: str) -> int:
        """Capacity a provider of ``kind`` may set itself; more is for staff to grant."""
        return self.self_capacity_platform if kind == "platform" else self.self_capacity_expert

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def inflight_limit(self) -> int:
        """Never more admitted requests than connections or threads to serve them."""
        limit = min(self.db_pool_size, self.request_threads)
        return min(self.max_inflight_requests or limit, limit)


@lru_cache
def get_settings() -> Settings:
    return Settings()
