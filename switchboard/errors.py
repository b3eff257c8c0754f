"""The one exception tree of Switchboard.

    SwitchboardError
    ├── ConfigError        a config file or setting is invalid
    ├── TaxonomyError      a taxonomy file is invalid (unknown owner, duplicate id, cycle, ...)
    ├── DataError          a training/evaluation data set is unusable (missing column, unknown label, ...)
    ├── InputError         one piece of feedback cannot be classified (empty text, ...)
    ├── BundleError        a model bundle is missing, incomplete, corrupted or inconsistent
    ├── ExportError        exporting a trained model to ONNX failed
    │   └── ParityError    the exported model disagrees with the original beyond tolerance
    └── TrackingError      the MLflow tracking store or model registry cannot be used

Serving maps ``InputError`` to HTTP 422 and ``BundleError`` to a failed start-up / 503;
the CLI prints any ``SwitchboardError`` as a one-line error and exits with status 2.
"""

from __future__ import annotations


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
