"""The one exception tree of Switchboard.

    SwitchboardError
    ├── ConfigError        a config file or setting is invalid
    ├── TaxonomyError      a taxonomy file is invalid (unknown owner, duplicate id, cycle, ...)
    ├── DataError          a training/evaluation data set is unusable (missing column, unknown label, ...)
    ├── InputError         one piece of feedback cannot be classified (empty text, ...)
    ├── BundleError        a model bundle is missing, incomplete, corrupted or inconsistent
    ├── ExportError        exporting a trained model to ONNX failed
    │   └── ParityError    the exported model disagrees with the original beyond tolerance
    ├── TrackingError      the MLflow tracking store or model registry cannot be used
    ├── StorageError       the database cannot be used (unreachable, not migrated, ...)
    ├── NotFoundError      a stored object (API key, review task, ...) does not exist
    ├── ConflictError      the action clashes with the stored state (task completed by someone else, ...)
    │   └── StaleTaskError a review task was made under a taxonomy version no longer in force
    └── AccessError        a request is not allowed
        ├── Unauthenticated    no valid API key (HTTP 401)
        └── Forbidden          a valid key whose role does not allow the action (HTTP 403)

Serving maps ``InputError`` to HTTP 422, ``BundleError`` to a failed start-up / 503 and the access errors
to 401/403, ``NotFoundError`` to 404 and ``ConflictError`` to 409 (all in serving/errors.py);
the CLI prints any ``SwitchboardError`` as a one-line error and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any


class SwitchboardError(Exception):
    """Base class of every error Switchboard raises on purpose."""


class ConfigError(SwitchboardError):
    """A configuration file or setting is invalid."""


class TaxonomyError(SwitchboardError):
    """A taxonomy definition is invalid."""


class DataError(SwitchboardError):
    """A data set cannot be used as given."""


class InputError(SwitchboardError):
    """A single feedback item cannot be classified."""


class BundleError(SwitchboardError):
    """A model bundle is missing, incomplete, corrupted or inconsistent."""


class ExportError(SwitchboardError):
    """Exporting a trained model failed."""


class ParityError(ExportError):
    """The exported model's outputs differ from the original beyond the allowed tolerance."""


class TrackingError(SwitchboardError):
    """The experiment tracker or model registry cannot be used."""


class StorageError(SwitchboardError):
    """The database cannot be used."""


class NotFoundError(SwitchboardError):
    """A stored object does not exist."""


class ConflictError(SwitchboardError):
    """The action clashes with the stored state."""


class StaleTaskError(ConflictError):
    """A review task belongs to a taxonomy version that is no longer in force."""


class AccessError(SwitchboardError):
    """A request is not allowed."""


class Unauthenticated(AccessError):
    """No valid credentials were presented."""


class Forbidden(AccessError):
    """Valid credentials whose role does not allow the action."""


def describe_validation(errors: Iterable[Mapping[str, Any]], skip: Collection[object] = ()) -> str:
    """pydantic's error list as one line naming each problem: ``field.path: message; ...``.

    ``skip`` drops location parts that mean nothing to the reader (e.g. FastAPI's "body").
    """
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in skip)
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
