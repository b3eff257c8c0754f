"""Runtime settings, read from ``SWITCHBOARD_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchboard.errors import ConfigError, describe_validation


class Settings(BaseSettings):
    """All runtime settings in one typed, validated place."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".switchboard"), description="Working folder for MLflow, bundles, reports.")
    bundle_path: Path | None = Field(default=None, description="Model bundle to serve (a folder).")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: a SQLite store under `home`."
    )
    registry_model_name: str = Field(default="switchboard-classifier", min_length=1)
    serve_alias: str = Field(default="champion", min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite under `home`.")
    auth_required: bool = Field(default=False, description="Require an API key on every API call.")
    key_cache_ttl_s: float = Field(default=30.0, ge=0, le=3600, description="How long a verified key is cached.")
    qa_sample_rate: float = Field(default=0.02, ge=0, le=1, description="Share of auto-routed items sent to QA.")
    agreement_rate: float = Field(default=0.1, ge=0, le=1, description="Share of tasks two annotators answer.")
    max_text_chars: int = Field(default=5_000, ge=16, le=1_000_000)
    max_batch_items: int = Field(default=256, ge=1, le=10_000, description="Items per batch request.")
    max_request_bytes: int = Field(default=2_000_000, ge=1_024, description="Larger request bodies get 413.")
    inference_batch_size: int = Field(default=16, ge=1, le=4096, description="Texts per onnxruntime call.")
    batch_max_wait_ms: float = Field(default=2.0, ge=0, le=100, description="Micro-batch wait under load.")
    max_batch_inference_items: int = Field(default=512, ge=1, le=100_000, description="Items per micro-batch.")
    max_queue_items: int = Field(default=4_096, ge=1, description="Queued items before 503 + Retry-After.")
    ort_intra_op_threads: int = Field(default=0, ge=0, le=256, description="0: one per physical core.")
    ort_small_batch_max: int = Field(
        default=2, ge=0, le=64, description="Inference calls of at most this many texts run single-threaded."
    )
    follow_release: bool = Field(
        default=False,
        description="Serve the bundle the release file of `serve_alias` names and swap when it changes "
        "(promotion, rollback). `switchboard serve` without --bundle turns it on.",
    )
    watch_release_s: float = Field(default=5.0, ge=0.1, le=3600, description="How often the release file is read.")
    case_sla_days: float = Field(default=14.0, gt=0, le=3650, description="Open cases older than this are overdue.")
    outbox_interval_s: float = Field(
        default=1.0, ge=0, le=3600, description="How often the server delivers due notifications (0: not here)."
    )
    webhook_max_attempts: int = Field(default=10, ge=1, le=100, description="Then the notification is dead.")
    webhook_base_delay_s: float = Field(default=2.0, gt=0, le=3600, description="First retry delay (doubles).")
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)
    alert_scan_interval_s: float = Field(
        default=300.0, ge=0, le=86400, description="How often the server scans today for spikes (0: never)."
    )
    alert_alpha: float = Field(default=0.001, gt=0, lt=0.5, description="Poisson tail probability that alerts.")
    alert_min_count: int = Field(default=3, ge=1, description="Fewer items in a day never alert.")
    ort_allow_spinning: bool = Field(
        default=False, description="Let idle onnxruntime threads spin (lower latency alone, less throughput)."
    )

    @model_validator(mode="after")
    def _check_bundle(self) -> Settings:
        if self.bundle_path is not None and not self.bundle_path.is_dir():
            raise ValueError(f"bundle_path {self.bundle_path} is not a folder")
        if self.max_queue_items < self.max_batch_items:
            raise ValueError(
                f"max_queue_items ({self.max_queue_items}) must be at least max_batch_items ({self.max_batch_items})"
            )
        return self

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'switchboard.db').resolve()}"

    @property
    def release_file(self) -> Path:
        """Where promotion writes which bundle ``serve_alias`` points to."""
        return self.home / "releases" / f"{self.registry_model_name}@{self.serve_alias}.json"

    @property
    def artifact_root(self) -> Path:
        return (self.home / "mlartifacts").resolve()


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides; raise ``ConfigError`` if invalid."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {describe_validation(exc.errors())}") from exc
