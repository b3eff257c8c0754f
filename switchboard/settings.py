"""Runtime settings, read from ``SWITCHBOARD_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchboard.errors import ConfigError


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
    max_text_chars: int = Field(default=5_000, ge=16, le=1_000_000)
    max_batch_items: int = Field(default=256, ge=1, le=10_000)
    inference_batch_size: int = Field(default=64, ge=1, le=4096)
    ort_intra_op_threads: int = Field(default=1, ge=0, le=256, description="0 lets onnxruntime decide.")

    @model_validator(mode="after")
    def _check_bundle(self) -> Settings:
        if self.bundle_path is not None and not self.bundle_path.is_dir():
            raise ValueError(f"bundle_path {self.bundle_path} is not a folder")
        return self

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.home / "mlartifacts").resolve()


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides; raise ``ConfigError`` if invalid."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {details}") from exc
