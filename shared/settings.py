"""Configuration from the environment. Embedded defaults for local mode; production refuses them."""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    crm_env: Literal["local", "test", "production"] = Field("local", alias="CRM_ENV")
    database_url: str = Field("sqlite:///.crm-local/crm.db", alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")  # None: in-process stand-in
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")

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

    cache_ttl_seconds: int = Field(300, alias="CACHE_TTL_SECONDS")
    session_ttl_seconds: int = Field(14 * 24 * 3600, alias="SESSION_TTL_SECONDS")
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS")
    max_body_bytes: int = Field(1024 * 1024, alias="MAX_BODY_BYTES")
    trusted_proxy_hops: int = Field(1, alias="TRUSTED_PROXY_HOPS")
    cursor_secret: str = Field("local-cursor-secret", alias="CURSOR_SECRET")

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
