"""One frozen settings object, read from ``SAFETRAIL_*`` environment variables (and ``.env``)."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "demo-hmac-key-not-secret"})
DEMO_HMAC_KEY = "demo-hmac-key-not-secret"
MIN_KEY_CHARS = 16  # the current HMAC key and every retired one


class Role(StrEnum):
    """What a bearer token may do; each role includes the ones before it, except ``service``."""

    SERVICE = "service"
    SUPPORT = "support"
    ENGINEER = "engineer"
    ADMIN = "admin"


class TokenInfo(BaseModel):
    """Who holds a bearer token and in which role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    role: Role


DEMO_TOKENS: dict[str, TokenInfo] = {
    "demo-service-token": TokenInfo(name="demo-service", role=Role.SERVICE),
    "demo-support-token": TokenInfo(name="ana.support", role=Role.SUPPORT),
    "demo-engineer-token": TokenInfo(name="eli.engineer", role=Role.ENGINEER),
    "demo-admin-token": TokenInfo(name="ada.admin", role=Role.ADMIN),
}


# Kafka's own rule for topic names (and a sane one for the consumer group): an empty or odd
# value fails at start, naming the variable, not at the first produce.
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]{1,249}$")]


class Settings(BaseSettings):
    """Settings for every safetrail process. Secrets are ``SecretStr`` and never logged."""

    model_config = SettingsConfigDict(
        env_prefix="SAFETRAIL_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("./.safetrail")
    clickhouse_url: str | None = None
    clickhouse_cluster: str | None = None
    kafka_bootstrap: str | None = None
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    # The tokens are the mapping's keys: kept out of repr() like the SecretStr fields.
    api_tokens: dict[str, TokenInfo] = Field(default_factory=dict, repr=False)
    hmac_key: SecretStr = SecretStr("")
    # Keys used before the current one, newest first (JSON array): after a rotation, support's
    # email and phone lookups still find customers whose events were stored under them.
    hmac_previous_keys: tuple[SecretStr, ...] = ()
    demo: bool = False
    rules_path: Path | None = None
    retention_days: int = Field(default=400, ge=1)
    raw_retention_days: int = Field(default=14, ge=1)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Worker processes for the embedded collector's processing step (None: one per core).
    ingest_workers: int | None = Field(default=None, ge=0)
    stuck_after_minutes: int = Field(default=30, ge=1)
    # Where a phone number support types without "+" (or "00") was dialled: "06 12 34 56 78"
    # is French with FR. Events' numbers are read by their rules' `default_region`.
    phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    raw_reads_per_minute: int = Field(default=30, ge=1)
    lookups_per_minute: int = Field(default=30, ge=1)
    topic_raw: TopicName = "safetrail.raw.v1"
    topic_customer: TopicName = "safetrail.timeline.customer.v1"
    topic_system: TopicName = "safetrail.timeline.system.v1"
    topic_dlq: TopicName = "safetrail.dlq.v1"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    raw_topic_retention_hours: int = Field(default=14 * 24, ge=1)
    projector_batch_size: int = Field(default=5000, ge=1)
    projector_batch_seconds: float = Field(default=0.5, gt=0)
    # A projector batch takes everything that arrives for at least this long after it opens
    # (then closes once the consumer runs dry): each insert has a fixed cost, so larger
    # batches leave more CPU to the rest of the pipeline. Adds up to this much to latency.
    projector_batch_min_seconds: float = Field(default=0.2, ge=0)
    consumer_group: TopicName = "safetrail-projector"
    # A faust worker whose raw partitions have lag and no new commit for this long exits
    # (code 75) so its supervisor restarts it (ingest/liveness.py).
    processor_stall_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if not self.demo and self.hmac_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "SAFETRAIL_HMAC_KEY is missing or a placeholder; set a real secret "
                f"(at least {MIN_KEY_CHARS} characters) or run with SAFETRAIL_DEMO=1"
            )
        if not self.demo and len(self.hmac_key.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"SAFETRAIL_HMAC_KEY must be at least {MIN_KEY_CHARS} characters")
        for old in self.hmac_previous_keys:
            value = old.get_secret_value()
            if value in PLACEHOLDER_SECRETS or len(value) < MIN_KEY_CHARS:
                raise ValueError(
                    "SAFETRAIL_HMAC_PREVIOUS_KEYS holds a placeholder or a key shorter than "
                    f"{MIN_KEY_CHARS} characters"
                )
            if value == self.hmac_key.get_secret_value():
                raise ValueError(
                    "SAFETRAIL_HMAC_PREVIOUS_KEYS repeats the current SAFETRAIL_HMAC_KEY"
                )
        if not self.demo and any(tok in DEMO_TOKENS for tok in self.api_tokens):
            raise ValueError("demo API tokens are refused outside the demo")
        return self

    @property
    def effective_hmac_key(self) -> bytes:
        """The HMAC key; the demo falls back to a fixed, clearly fake key."""
        value = self.hmac_key.get_secret_value() or DEMO_HMAC_KEY
        return value.encode()

    @property
    def previous_hmac_keys(self) -> tuple[bytes, ...]:
        """Keys retired by rotations (newest first); lookups try them after the current one."""
        return tuple(old.get_secret_value().encode() for old in self.hmac_previous_keys)

    @property
    def effective_tokens(self) -> dict[str, TokenInfo]:
        """Configured tokens; the demo adds the well-known demo tokens."""
        if self.demo:
            return {**DEMO_TOKENS, **self.api_tokens}
        return dict(self.api_tokens)

    @cached_property
    def effective_clickhouse_url(self) -> str:
        """Server URL if configured, else chDB under the data dir (the embedded default)."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'chdb').resolve()}"

    @property
    def store_cluster(self) -> str | None:
        """The ClickHouse cluster the store's tables live on (a server's; chDB has none)."""
        return (self.clickhouse_cluster or None) if self.clickhouse_url else None

    @property
    def embedded(self) -> bool:
        """No broker configured: the collector processes in-process."""
        return not self.kafka_bootstrap
