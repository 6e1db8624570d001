"""Configuration from the environment. Embedded defaults for local mode; production refuses them."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    crm_env: Literal["local", "test", "production"] = Field("local", alias="CRM_ENV")
    database_url: str = Field("sqlite:///.crm-local/crm.db", alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")  # None: in-process stand-in
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")
    # How long the database may keep a caller waiting (seconds). The statement limit is enforced by the
    # server (MariaDB max_statement_time, MySQL max_execution_time, lock waits); the client's socket
    # timeouts sit just above it, so a frozen server costs a request no more than that. 0: no limit.
    db_statement_timeout: float = Field(3.0, alias="DB_STATEMENT_TIMEOUT", ge=0)
    db_connect_timeout: float = Field(2.0, alias="DB_CONNECT_TIMEOUT", gt=0)
    db_pool_timeout: float = Field(2.0, alias="DB_POOL_TIMEOUT", gt=0)  # waiting for a free pooled connection

    firebase_project_id: str = Field("crm-local", alias="FIREBASE_PROJECT_ID")
    firebase_certs_url: str | None = Field(None, alias="FIREBASE_CERTS_URL")
    firebase_auth_emulator_host: str | None = Field(None, alias="FIREBASE_AUTH_EMULATOR_HOST")

    sentry_dsn: str | None = Field(None, alias="SENTRY_DSN")
    sentry_traces_sample_rate: float = Field(0.0, alias="SENTRY_TRACES_SAMPLE_RATE")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    access_log: bool = Field(True, alias="ACCESS_LOG")

    rate_limit_window_seconds: int = Field(60, alias="RATE_LIMIT_WINDOW_SECONDS")
    rate_limit_workspace: int = Field(60_000, alias="RATE_LIMIT_WORKSPACE")
    rate_limit_credential: int = Field(30_000, alias="RATE_LIMIT_CREDENTIAL")
    rate_limit_fallback_keys: int = Field(10_000, alias="RATE_LIMIT_FALLBACK_KEYS")
    # Failed authentications (401s) one client address may have per window before it is refused with 429.
    auth_failure_limit: int = Field(20, alias="AUTH_FAILURE_LIMIT", ge=1)
    auth_failure_window_seconds: int = Field(60, alias="AUTH_FAILURE_WINDOW_SECONDS", ge=1)

    cache_ttl_seconds: int = Field(300, alias="CACHE_TTL_SECONDS")
    session_ttl_seconds: int = Field(14 * 24 * 3600, alias="SESSION_TTL_SECONDS")
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS")
    max_body_bytes: int = Field(1024 * 1024, alias="MAX_BODY_BYTES")
    max_header_bytes: int = Field(16 * 1024, alias="MAX_HEADER_BYTES", gt=0)  # all request headers together
    trusted_proxy_hops: int = Field(1, alias="TRUSTED_PROXY_HOPS")
    cursor_secret: str = Field("local-cursor-secret", alias="CURSOR_SECRET")

    # AWS: boto3 reads AWS_ENDPOINT_URL itself (crm local points it at moto's server).
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    jobs_queue_url: str | None = Field(None, alias="JOBS_QUEUE_URL")  # None: look the queue up by name
    jobs_dlq_url: str | None = Field(None, alias="JOBS_DLQ_URL")
    jobs_queue_name: str = Field("crm-jobs", alias="JOBS_QUEUE_NAME")
    # The bulk lane (imports and what they cause); None: looked up as `<JOBS_QUEUE_NAME>-bulk`, and bulk
    # work shares the jobs queue when there is no such queue.
    jobs_bulk_queue_url: str | None = Field(None, alias="JOBS_BULK_QUEUE_URL")
    jobs_bulk_dlq_url: str | None = Field(None, alias="JOBS_BULK_DLQ_URL")
    jobs_bulk_queue_name: str | None = Field(None, alias="JOBS_BULK_QUEUE_NAME")
    files_bucket: str = Field("crm-local-files", alias="FILES_BUCKET")
    worker_threads: int = Field(4, alias="WORKER_THREADS")
    worker_wait_seconds: int = Field(10, alias="WORKER_WAIT_SECONDS", ge=0, le=20)
    worker_visibility_timeout: int = Field(60, alias="WORKER_VISIBILITY_TIMEOUT", ge=5)
    worker_max_receives: int = Field(5, alias="WORKER_MAX_RECEIVES")  # used when the queue has no redrive policy
    worker_stop_timeout: int = Field(25, alias="WORKER_STOP_TIMEOUT")  # under ECS stopTimeout (30 s)
    worker_metrics_port: int = Field(9100, alias="WORKER_METRICS_PORT")
    # Jobs (imports, exports, purges) may run longer statements than a request: `crm worker` uses this limit.
    worker_db_statement_timeout: float = Field(120.0, alias="WORKER_DB_STATEMENT_TIMEOUT", ge=0)
    relay_batch_size: int = Field(200, alias="RELAY_BATCH_SIZE")
    relay_idle_seconds: float = Field(0.2, alias="RELAY_IDLE_SECONDS")
    event_retention_days: int = Field(35, alias="EVENT_RETENTION_DAYS")  # the event log promises >= 30
    # Webhook targets on private networks are refused (SSRF); tests and local mode may allow a few CIDRs.
    webhook_allowed_private_cidrs: list[str] = Field(default_factory=list, alias="WEBHOOK_ALLOWED_PRIVATE_CIDRS")
    webhook_timeout_seconds: float = Field(10.0, alias="WEBHOOK_TIMEOUT_SECONDS")
    # An import job commits this many rows (or what it read in this many seconds) with its checkpoint,
    # then hands over to its continuation: no job runs long, memory stays bounded.
    import_chunk_rows: int = Field(1000, alias="IMPORT_CHUNK_ROWS", ge=1)
    import_chunk_seconds: float = Field(10.0, alias="IMPORT_CHUNK_SECONDS", gt=0)

    # The real-time tier (tiers/realtime.py). The relay publishes what it numbered on this Redis channel
    # (pub/sub is not per database: tests and side-by-side deployments set their own); presence messages
    # travel on `<channel>:presence`.
    realtime_channel: str = Field("crm:realtime:events", alias="REALTIME_CHANNEL", min_length=1)
    # Messages one connection may have waiting. A live event that finds them full waits up to
    # REALTIME_SLOW_CLIENT_SECONDS for room (a burst reaches a client that keeps reading); a client that
    # makes none in that time is disconnected as too slow (it can resume).
    realtime_send_queue_size: int = Field(1000, alias="REALTIME_SEND_QUEUE_SIZE", ge=1)
    realtime_slow_client_seconds: float = Field(2.0, alias="REALTIME_SLOW_CLIENT_SECONDS", gt=0, le=30)
    # How often every connection's credential is checked again (a revoked key, an ended session, a removed
    # member is disconnected within this); the issue promises 60 s, we check twice as often.
    realtime_recheck_seconds: float = Field(30.0, alias="REALTIME_RECHECK_SECONDS", gt=0, le=30)
    # How often a workspace with connections compares its last sequence with the log (a lost announcement).
    realtime_heal_seconds: float = Field(5.0, alias="REALTIME_HEAL_SECONDS", gt=0)
    # The subscription's Redis link is PINGed after this long silent, and taken for dead after twice it.
    realtime_redis_keepalive_seconds: float = Field(15.0, alias="REALTIME_REDIS_KEEPALIVE_SECONDS", gt=0, le=300)
    # A resume further behind than this many events is told to resync through REST instead.
    realtime_backfill_limit: int = Field(10_000, alias="REALTIME_BACKFILL_LIMIT", ge=1)
    # A viewer's presence entry outlives its socket by at most this; it is refreshed at a third of it.
    realtime_presence_ttl_seconds: int = Field(30, alias="REALTIME_PRESENCE_TTL_SECONDS", ge=3)
    # Browser origins allowed to connect ("*" any); empty: the tier's own origin only.
    realtime_cors_origins: list[str] = Field(default_factory=list, alias="REALTIME_CORS_ORIGINS")
    # Long-polling needs every request of a session to reach the same process: with several processes behind
    # one port (`crm realtime --workers N`), only websockets are offered.
    realtime_websocket_only: bool = Field(False, alias="REALTIME_WEBSOCKET_ONLY")

    # AI providers (layers/ai/). A provider is available only when its key is set; `local` always is.
    # The keys come from Secrets Manager in the stacks. A base URL points the SDK elsewhere (tests' stubs).
    openai_api_key: str | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    gemini_api_key: str | None = Field(None, alias="GEMINI_API_KEY")
    gemini_base_url: str | None = Field(None, alias="GEMINI_BASE_URL")
    # Prices per 1M tokens, as JSON: {"openai/gpt-4o-mini": {"input": "0.15", "output": "0.60"}, ...}, all in
    # AI_PRICE_CURRENCY. A model with no price costs 0 (and is logged); `local` always costs 0.
    ai_prices: dict[str, dict[Literal["input", "output"], Decimal]] = Field(default_factory=dict, alias="AI_PRICES")
    ai_price_currency: str = Field("USD", alias="AI_PRICE_CURRENCY", pattern=r"^[A-Z]{3}$")
    # One provider attempt may take this long: while a request waits (the issue's ≤ 10 s), and in a job (≤ 60 s).
    ai_request_timeout_seconds: float = Field(10.0, alias="AI_REQUEST_TIMEOUT_SECONDS", gt=0, le=10)
    ai_job_timeout_seconds: float = Field(60.0, alias="AI_JOB_TIMEOUT_SECONDS", gt=0, le=60)
    # A 429's Retry-After is waited out up to this; a longer one fails over to the next provider at once.
    ai_retry_after_cap_seconds: float = Field(5.0, alias="AI_RETRY_AFTER_CAP_SECONDS", ge=0, le=60)

    @property
    def is_local(self) -> bool:
        return self.crm_env in ("local", "test")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.crm_env == "production":
            problems = []
            if self.database_url.startswith("sqlite"):
                problems.append("DATABASE_URL must point at MySQL, not the embedded SQLite")
            if not self.redis_url:
                problems.append("REDIS_URL must be set (the in-process stand-in is for local mode)")
            if self.firebase_auth_emulator_host:
                problems.append("FIREBASE_AUTH_EMULATOR_HOST switches token verification off")
            if self.cursor_secret == "local-cursor-secret":
                problems.append("CURSOR_SECRET must be set")
            if self.webhook_allowed_private_cidrs:
                problems.append("WEBHOOK_ALLOWED_PRIVATE_CIDRS opens private networks to webhooks (local mode only)")
            if problems:
                raise ValueError("refusing to start in production: " + "; ".join(problems))
        elif self.firebase_auth_emulator_host and self.crm_env != "local":
            raise ValueError("FIREBASE_AUTH_EMULATOR_HOST is allowed only with CRM_ENV=local")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment, then call this)."""
    get_settings.cache_clear()
