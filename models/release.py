"""The release file: which registered bundle an alias (e.g. ``champion``) points to, as a local folder.

Promotion and rollback (training side, with MLflow) write it; a server that follows it (``switchboard serve``
without ``--bundle``) swaps to the new bundle within ``SWITCHBOARD_WATCH_RELEASE_S`` seconds, without
importing MLflow. It is written atomically (temporary file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.errors import BundleError


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str
    registry_version: str = Field(description="Version number in the model registry.")
    alias: str
    bundle_path: Path
    model_version: str
    taxonomy_version: str
    released_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def write_release(path: Path, release: Release) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".release-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(release.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)


def read_release(path: Path) -> Release | None:
    """The release, or None when there is no file yet; ``BundleError`` when the file is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return Release.model_validate_json(text)
    except ValidationError as exc:
        raise BundleError(f"release file {path} is invalid: {exc}") from exc
