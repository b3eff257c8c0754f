"""Reading the project's YAML documents (taxonomies, migrations, training configs) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from switchboard.errors import SwitchboardError


def read_mapping(path: Path, kind: str, error: type[SwitchboardError]) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``error`` names the file and the problem (missing, not YAML, not a mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{kind} not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{kind} {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{kind} {path} must hold a mapping, got {type(data).__name__}")
    return data
