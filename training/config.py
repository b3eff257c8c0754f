"""The training config file: validated before any work starts (like spaCy's config / setfit's TrainingArguments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard.errors import ConfigError, describe_validation
from switchboard.yamlfile import read_mapping

BUILTIN_BASE_MODEL = "builtin:all-MiniLM-L6-v2"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: Path = Field(description="CSV, JSONL or Parquet file with labelled feedback.")
    validation: Path | None = Field(default=None, description="Held-out file; else split off `train`.")
    extra: list[Path] = Field(
        default_factory=list, description="More labelled files appended to `train` (e.g. exported corrections)."
    )
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    text_column: str = "text"
    label_column: str = "label"


class HyperParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=4, ge=1, le=100)
    batch_size: int = Field(default=32, ge=1, le=1024)
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0, description="Encoder learning rate.")
    head_learning_rate: float = Field(default=2e-3, gt=0, le=1.0)
    weight_decay: float = Field(default=0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1.0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1.0)
    dropout: float = Field(default=0.1, ge=0, lt=1.0)
    max_length: int = Field(default=64, ge=8, le=512, description="Tokens per text, special tokens included.")
    seed: int = 13
    threads: int = Field(default=0, ge=0, le=256, description="torch CPU threads; 0 = all cores.")


class ParityTolerance(BaseModel):
    """How far the exported ONNX model may drift from the torch model before export fails."""

    model_config = ConfigDict(extra="forbid")

    fp32_max_prob_diff: float = Field(default=1e-4, gt=0, le=1.0)
    # Dynamic int8 moves a rare borderline item's probabilities a lot (max diff 0.39 over BANKING77 test while
    # accuracy moved 0.06 points), so the int8 gate rests on agreement and the *mean* difference, with the
    # maximum only as a sanity cap.
    int8_min_top1_agreement: float = Field(default=0.97, ge=0, le=1.0)
    int8_max_mean_prob_diff: float = Field(default=0.005, gt=0, le=1.0)
    int8_max_prob_diff: float = Field(default=0.6, gt=0, le=1.0)


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantize: bool = True
    parity: ParityTolerance = ParityTolerance()
    parity_samples: int = Field(default=256, ge=1, le=100_000)


class DeferralTargets(BaseModel):
    """Accuracy the auto-applied predictions must reach on the validation split; thresholds follow."""

    model_config = ConfigDict(extra="forbid")

    calibrate: bool = Field(default=True, description="Fit a temperature on the validation split.")
    category_target: float = Field(default=0.95, gt=0, le=1.0)
    owner_target: float = Field(default=0.98, gt=0, le=1.0)
    z: float = Field(
        default=1.645, ge=0, le=5, description="Targets must hold for the accuracy's Wilson lower bound (0: point)."
    )


class TrainingConfig(BaseModel):
    """A complete, validated training run description."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    experiment: str = Field(default="switchboard", min_length=1)
    model_name: str = Field(default="switchboard-classifier", min_length=1)
    base_model: str = Field(default=BUILTIN_BASE_MODEL, description="`builtin:all-MiniLM-L6-v2` or a folder.")
    taxonomy: Path
    data: DataConfig
    hyperparameters: HyperParameters = HyperParameters()
    export: ExportConfig = ExportConfig()
    deferral: DeferralTargets = DeferralTargets()
    output_dir: Path = Path(".switchboard/runs/latest")
    register_version: bool = Field(default=True, description="Register the bundle in the model registry.")
    alias: str | None = Field(default="champion", description="Registry alias the new version gets.")

    @model_validator(mode="after")
    def _alias_needs_registry(self) -> TrainingConfig:
        if self.alias and not self.register_version:
            raise ValueError("alias is set but register_version is false: nothing to alias")
        return self

    def flat_params(self) -> dict[str, Any]:
        """Flattened ``section.key`` params for experiment tracking."""
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                flat[prefix] = value

        walk("", self.model_dump(mode="json"))
        return flat

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> TrainingConfig:
        """Load a YAML config; relative paths inside it resolve against the file's folder."""
        path = Path(path)
        raw = read_mapping(path, "training config", ConfigError)
        raw.update({k: v for k, v in overrides.items() if v is not None})
        config = cls.from_dict(raw, source=str(path))
        base = path.parent
        data = config.data.model_copy(
            update={
                "train": _rebase(base, config.data.train),
                "validation": _rebase(base, config.data.validation) if config.data.validation else None,
                "extra": [_rebase(base, p) for p in config.data.extra],
            }
        )
        updates: dict[str, Any] = {"taxonomy": _rebase(base, config.taxonomy), "data": data}
        if not config.base_model.startswith("builtin:"):
            updates["base_model"] = str(_rebase(base, Path(config.base_model)))
        return config.model_copy(update=updates)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> TrainingConfig:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"invalid training config {source}: {describe_validation(exc.errors())}") from exc


def _rebase(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()
