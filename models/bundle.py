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
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.deferral import DeferralPolicy
from switchboard.errors import BundleError, TaxonomyError
from switchboard.migration import TaxonomyMigration
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
    output_map: dict[str, str] = Field(
        default_factory=dict,
        description="Model label → category of this bundle's taxonomy, for a model trained under an earlier "
        "taxonomy and carried to this one by a migration (renames, merges); probabilities of labels mapped to "
        "the same category are summed. Unlisted labels are categories themselves.",
    )
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
    def categories(self) -> tuple[str, ...]:
        """The categories the bundle predicts: its labels after ``output_map``, first occurrence order."""
        mapped = self.metadata.output_map
        return tuple(dict.fromkeys(mapped.get(lab, lab) for lab in self.labels))

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
    check_labels(labels, taxonomy, metadata.output_map)
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


def check_labels(labels: list[str], taxonomy: Taxonomy, output_map: dict[str, str] | None = None) -> None:
    if not labels:
        raise BundleError("a bundle needs at least one label")
    if len(set(labels)) != len(labels):
        raise BundleError("labels.json holds duplicate labels")
    stray = sorted(set(output_map or {}) - set(labels))
    if stray:
        raise BundleError(f"output_map names labels the model does not have: {', '.join(stray)}")
    mapped = output_map or {}
    unknown = [mapped.get(lab, lab) for lab in labels if mapped.get(lab, lab) not in taxonomy.leaf_owner]
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
    check_labels(labels, taxonomy, metadata.output_map)
    return Bundle(path=path, metadata=metadata, labels=tuple(labels), taxonomy=taxonomy)


@contextmanager
def staged_bundle(out_dir: Path, prefix: str) -> Iterator[Path]:
    """A staging folder beside ``out_dir``: the body writes the bundle there; on success it replaces
    ``out_dir`` in one rename, on failure nothing is left behind."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def migrate_bundle(bundle: Bundle, migration: TaxonomyMigration, out_dir: Path) -> Bundle:
    """The same network serving the migration's new taxonomy, without retraining: renamed and merged
    categories are mapped through ``output_map`` and owners come from the new category→owner map.

    Raises ``BundleError`` when the model predicts a category the migration splits or retires without a
    target (only a model retrained under the new taxonomy can serve it).
    """
    if bundle.taxonomy.version != migration.old.version:
        raise BundleError(
            f"bundle {bundle.path} serves taxonomy {bundle.taxonomy.version}; the migration starts from "
            f"{migration.old.version}"
        )
    output_map: dict[str, str] = {}
    blocked: list[str] = []
    for label in bundle.labels:
        category = bundle.metadata.output_map.get(label, label)
        target = migration.map_label(category)
        if target is None:
            blocked.append(category)
        elif target != label:
            output_map[label] = target
    if blocked:
        raise BundleError(
            f"bundle {bundle.path} cannot serve taxonomy {migration.new.version} without retraining: "
            f"{', '.join(sorted(set(blocked)))} split or retired into several categories"
        )
    out_dir = Path(out_dir)
    with staged_bundle(out_dir, ".migrate-") as staging:
        for name in (MODEL_FILE, TOKENIZER_FILE):
            shutil.copyfile(bundle.path / name, staging / name)
        meta = bundle.metadata.model_copy(
            update={
                "model_version": f"{bundle.metadata.model_version}~{migration.new.version}",
                "taxonomy_version": migration.new.version,
                "output_map": output_map,
                "training": {
                    **bundle.metadata.training,
                    "migrated_from": {
                        "model_version": bundle.metadata.model_version,
                        "taxonomy_version": migration.old.version,
                    },
                },
            }
        )
        write_manifest(staging, list(bundle.labels), migration.new, meta)
    return load_bundle(out_dir)
