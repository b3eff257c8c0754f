"""The model bundle: a self-describing folder, written by export and checked on load.

model.onnx       the network: inputs input_ids/attention_mask/token_type_ids, output ``logits``
tokenizer.json   the exact tokenizer used in training
labels.json      the ordered category ids of the output dimension
taxonomy.yaml    the taxonomy in force (names, owners, category→owner map)
metadata.json    format version, model/taxonomy versions, preprocessing, metrics, parity,
                 package versions and a SHA-256 of every file above
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.deferral import DeferralPolicy
from switchboard.errors import BundleError, TaxonomyError
from switchboard.schemas import ModelInfo
from switchboard.taxonomy import Taxonomy

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
TAXONOMY_FILE = "taxonomy.yaml"
METADATA_FILE = "metadata.json"
CHECKSUMMED = (MODEL_FILE, TOKENIZER_FILE, LABELS_FILE, TAXONOMY_FILE)


class BundleMetadata(BaseModel):
    """``metadata.json``: everything needed to trust and use the bundle."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: int = FORMAT_VERSION
    model_name: str
    model_version: str
    created_at: datetime
    base_model: str
    pooling: Literal["mean"] = "mean"
    max_length: int = Field(ge=4, le=4096)
    quantization: Literal["int8-dynamic", "none"]
    taxonomy_version: str
    num_labels: int = Field(ge=1)
    input_names: list[str]
    output_name: str = "logits"
    temperature: float = Field(default=1.0, gt=0, description="Probabilities are softmax(logits / temperature).")
    deferral: DeferralPolicy = Field(default_factory=DeferralPolicy, description="When a human must review.")
    metrics: dict[str, float] = Field(default_factory=dict)
    parity: dict[str, float] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict, description="SHA-256 of each bundle file.")


@dataclass(frozen=True)
class Bundle:
    """A bundle that passed every load-time check."""

    path: Path
    metadata: BundleMetadata
    labels: tuple[str, ...]
    taxonomy: Taxonomy

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_file(self) -> Path:
        return self.path / TOKENIZER_FILE

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.metadata.model_name,
            version=self.metadata.model_version,
            taxonomy_version=self.metadata.taxonomy_version,
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(path: Path, labels: list[str], taxonomy: Taxonomy, metadata: BundleMetadata) -> Bundle:
    """Write labels, taxonomy and metadata (with checksums) next to an exported model + tokenizer.

    ``model.onnx`` and ``tokenizer.json`` must already be in ``path``. Returns the loaded bundle,
    so a bundle that would not load is never reported as written.
    """
    check_labels(labels, taxonomy)
    (path / LABELS_FILE).write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    taxonomy.write(path / TAXONOMY_FILE)
    files = {}
    for name in CHECKSUMMED:
        if not (path / name).is_file():
            raise BundleError(f"cannot write bundle {path}: {name} is missing")
        files[name] = sha256_file(path / name)
    final = metadata.model_copy(update={"files": files, "num_labels": len(labels)})
    (path / METADATA_FILE).write_text(final.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return load_bundle(path)


def check_labels(labels: list[str], taxonomy: Taxonomy) -> None:
    if not labels:
        raise BundleError("a bundle needs at least one label")
    if len(set(labels)) != len(labels):
        raise BundleError("labels.json holds duplicate labels")
    unknown = [lab for lab in labels if lab not in taxonomy.leaf_owner]
    if unknown:
        raise BundleError(f"labels not among the leaf categories of taxonomy {taxonomy.version}: {', '.join(unknown)}")


def load_bundle(path: str | Path, verify_checksums: bool = True) -> Bundle:
    """Load a bundle and check it: files present, format known, checksums, labels vs taxonomy."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"model bundle not found: {path} is not a folder")
    missing = [n for n in (*CHECKSUMMED, METADATA_FILE) if not (path / n).is_file()]
    if missing:
        raise BundleError(f"model bundle {path} is incomplete: missing {', '.join(missing)}")
    try:
        metadata = BundleMetadata.model_validate_json((path / METADATA_FILE).read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise BundleError(f"model bundle {path}: invalid {METADATA_FILE}: {exc}") from exc
    if metadata.format_version != FORMAT_VERSION:
        raise BundleError(
            f"model bundle {path} has format_version {metadata.format_version}; "
            f"this Switchboard reads version {FORMAT_VERSION}"
        )
    if verify_checksums:
        for name in CHECKSUMMED:
            expected = metadata.files.get(name)
            if expected is None:
                raise BundleError(f"model bundle {path}: metadata has no checksum for {name}")
            if sha256_file(path / name) != expected:
                raise BundleError(f"model bundle {path}: {name} does not match its checksum (corrupted?)")
    try:
        labels = json.loads((path / LABELS_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"model bundle {path}: {LABELS_FILE} is not JSON: {exc}") from exc
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise BundleError(f"model bundle {path}: {LABELS_FILE} must be a list of category ids")
    try:
        taxonomy = Taxonomy.load(path / TAXONOMY_FILE)
    except TaxonomyError as exc:
        raise BundleError(f"model bundle {path}: {exc}") from exc
    if taxonomy.version != metadata.taxonomy_version:
        raise BundleError(
            f"model bundle {path}: taxonomy.yaml is version {taxonomy.version} "
            f"but metadata says {metadata.taxonomy_version}"
        )
    if len(labels) != metadata.num_labels:
        raise BundleError(f"model bundle {path}: {len(labels)} labels but metadata says {metadata.num_labels}")
    check_labels(labels, taxonomy)
    return Bundle(path=path, metadata=metadata, labels=tuple(labels), taxonomy=taxonomy)
