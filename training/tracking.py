"""Experiment tracking and the model registry (MLflow; embedded default: SQLite + local artifacts)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.errors import TrackingError
from switchboard.settings import Settings

log = logging.getLogger(__name__)


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return mlflow


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str | None
    source: str


class Tracker:
    """One MLflow tracking store: runs, metrics, artifacts, registered bundles and aliases."""

    def __init__(self, settings: Settings) -> None:
        settings.home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.mlflow = _mlflow()
        try:
            self.mlflow.set_tracking_uri(settings.tracking_uri)
            self.client = self.mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
        except Exception as exc:
            raise TrackingError(f"cannot open MLflow store {settings.tracking_uri}: {exc}") from exc

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = (self.settings.artifact_root / name).as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    @contextmanager
    def run(self, experiment: str, run_name: str | None = None, tags: dict[str, str] | None = None) -> Iterator[str]:
        """Start a run; yields its id. The run is marked FAILED if the body raises."""
        try:
            experiment_id = self._experiment_id(experiment)
        except Exception as exc:
            raise TrackingError(f"cannot use MLflow experiment '{experiment}': {exc}") from exc
        with self.mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as active:
            yield str(active.info.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        self.mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.mlflow.set_tags(tags)

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        self.mlflow.log_artifacts(str(folder), artifact_path=artifact_path)

    def log_artifact(self, file: Path, artifact_path: str | None = None) -> None:
        self.mlflow.log_artifact(str(file), artifact_path=artifact_path)

    def register_bundle(
        self, run_id: str, name: str, artifact_path: str, alias: str | None, tags: dict[str, str]
    ) -> RegisteredVersion:
        """Register the bundle logged under ``artifact_path`` of ``run_id``; optionally move ``alias`` to it."""
        try:
            if self.client.get_registered_model(name) is None:  # pragma: no cover - raises instead
                raise LookupError(name)
        except Exception:
            self.client.create_registered_model(name, description="Switchboard feedback classifier bundles")
        run = self.client.get_run(run_id)
        source = f"{run.info.artifact_uri}/{artifact_path}"
        version = self.client.create_model_version(name, source=source, run_id=run_id, tags=tags)
        if alias:
            self.set_alias(name, alias, str(version.version))
        return RegisteredVersion(name, str(version.version), alias, source)

    def resolve_alias(self, name: str, alias: str) -> RegisteredVersion:
        try:
            version = self.client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            raise TrackingError(f"no model version '{name}@{alias}' in {self.settings.tracking_uri}") from exc
        return RegisteredVersion(name, str(version.version), alias, str(version.source))

    def champion_ref(self, name: str, alias: str = "champion") -> str:
        """``name/version`` of the model ``alias`` points to now, or ``none``: a new run's parent model."""
        try:
            found = self.resolve_alias(name, alias)
        except TrackingError:
            return "none"
        return f"{found.name}/{found.version}"

    def set_alias(self, name: str, alias: str, version: str) -> None:
        try:
            self.client.set_registered_model_alias(name, alias, version)
        except Exception as exc:
            raise TrackingError(f"cannot point {name}@{alias} at version {version}: {exc}") from exc

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(name, alias)
        except Exception as exc:
            raise TrackingError(f"cannot delete alias {name}@{alias}: {exc}") from exc

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)

    def download_bundle(self, registered: RegisteredVersion) -> Path:
        """A local copy of a registered bundle (cached under ``home/bundles``)."""
        target = (self.settings.home / "bundles" / f"{registered.name}-v{registered.version}").resolve()
        if (target / "metadata.json").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".partial")
        staging.mkdir(parents=True, exist_ok=True)
        try:
            local = self.mlflow.artifacts.download_artifacts(artifact_uri=registered.source, dst_path=str(staging))
        except Exception as exc:
            raise TrackingError(f"cannot download {registered.source}: {exc}") from exc
        Path(local).rename(target)
        return target
