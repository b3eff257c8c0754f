"""One training run end to end: data → fine-tune → checkpoint → ONNX bundle → evaluation → MLflow registry."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from evaluation.report import EvaluationReport, evaluate_bundle, write_report
from evaluation.thresholds import ThresholdReport, gold_indices, sweep
from models.bundle import Bundle, write_manifest
from models.calibration import fit_temperature
from models.classifier import Classifier, softmax
from models.export import export_bundle
from switchboard.corpus import LabelledData, read_labelled, stratified_split
from switchboard.errors import DataError
from switchboard.settings import Settings
from switchboard.taxonomy import Taxonomy
from training.config import DeferralTargets, TrainingConfig
from training.network import resolve_base_model, save_checkpoint
from training.tracking import RegisteredVersion, Tracker
from training.trainer import fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOutcome:
    bundle: Bundle
    report: EvaluationReport | None
    run_id: str
    registered: RegisteredVersion | None
    fit_seconds: float
    total_seconds: float


def load_data(config: TrainingConfig, taxonomy: Taxonomy) -> tuple[LabelledData, LabelledData | None]:
    d = config.data
    train = read_labelled(d.train, d.text_column, d.label_column, taxonomy)
    for extra in d.extra:  # corrections and other labelled files: same columns, same taxonomy
        more = read_labelled(extra, d.text_column, d.label_column, taxonomy)
        train = LabelledData(train.texts + more.texts, train.labels + more.labels)
    if d.validation is not None:
        return train, read_labelled(d.validation, d.text_column, d.label_column, taxonomy)
    if d.validation_fraction > 0:
        return stratified_split(train, d.validation_fraction, config.hyperparameters.seed)
    return train, None


def model_labels(taxonomy: Taxonomy, train: LabelledData) -> list[str]:
    """The output labels: leaf categories with training examples, in taxonomy order."""
    present = set(train.labels)
    labels = [c for c in taxonomy.leaf_ids if c in present]
    if len(labels) < 2:
        raise DataError(f"training data covers {len(labels)} category; a classifier needs at least 2")
    return labels


def run_training(config: TrainingConfig, settings: Settings) -> TrainingOutcome:
    """Train, export, evaluate, track and register one model as described by ``config``."""
    started = time.perf_counter()
    taxonomy = Taxonomy.load(config.taxonomy)
    base_dir = resolve_base_model(config.base_model)
    train, validation = load_data(config, taxonomy)
    labels = model_labels(taxonomy, train)
    unseen = [c for c in taxonomy.leaf_ids if c not in labels]
    if unseen:
        log.warning("categories without training examples (the model cannot predict them): %s", unseen)
    tracker = Tracker(settings)
    tags = {
        "taxonomy_version": taxonomy.version,
        "data_version": train.fingerprint,
        "base_model": config.base_model,
        "parent_model": tracker.champion_ref(config.model_name),
    }
    # one experiment per taxonomy version: runs are only comparable under the same label set
    with tracker.run(f"{config.experiment}/{taxonomy.version}", tags=tags) as run_id:
        tracker.log_params(config.flat_params())
        tracker.log_params(
            {"train_rows": len(train), "validation_rows": len(validation or []), "num_labels": len(labels)}
        )
        if validation is not None:
            tracker.set_tags({"validation_data_version": validation.fingerprint})
        result = fit(
            base_dir,
            train,
            validation,
            labels,
            config.hyperparameters,
            on_epoch=lambda epoch, m: tracker.log_metrics(m, step=epoch),
        )
        info = {
            "base_model": config.base_model,
            "max_length": config.hyperparameters.max_length,
            "dropout": config.hyperparameters.dropout,
            "history": result.history,
            "fit_seconds": result.seconds,
        }
        out = config.output_dir
        # parity compares ONNX with torch on the same inputs: held-out texts first, then training texts, so the
        # agreement is measured on enough items even when the validation split is small
        parity_texts = ((validation.texts if validation is not None else []) + train.texts)[
            : config.export.parity_samples
        ]
        checkpoint = save_checkpoint(
            out / "checkpoint",
            result.model,
            base_dir / "tokenizer.json",
            labels,
            taxonomy,
            info,
            parity_texts,
        )
        bundle, parity = export_bundle(
            checkpoint,
            out / "bundle",
            parity_texts=checkpoint.parity_texts,
            model_name=config.model_name,
            quantize=config.export.quantize,
            tolerance=config.export.parity,
            training_info={
                "run_id": run_id,
                "train_rows": len(train),
                "data_version": train.fingerprint,
                "epochs": config.hyperparameters.epochs,
                "fit_seconds": round(result.seconds, 1),
            },
        )
        tracker.log_metrics({f"parity_{k}": v for k, v in parity.items()})
        report = None
        if validation is not None and len(validation):
            bundle, thresholds = calibrate_and_choose_policy(bundle, validation, config.deferral)
            (out / "report").mkdir(parents=True, exist_ok=True)
            (out / "report" / "thresholds.json").write_text(thresholds.model_dump_json(indent=1), encoding="utf-8")
            tracker.log_metrics(
                {
                    "temperature": bundle.metadata.temperature,
                    "owner_threshold": bundle.metadata.deferral.owner.threshold,
                    "category_threshold": bundle.metadata.deferral.category.threshold,
                }
            )
            report = evaluate_bundle(bundle, validation, split="validation")
            write_report(report, out / "report")
            bundle = _with_metrics(bundle, report)
            tracker.log_metrics(
                {
                    "bundle_accuracy": report.scores.accuracy,
                    "bundle_macro_f1": report.scores.macro_f1,
                    "bundle_owner_accuracy": report.owner_accuracy,
                }
            )
            tracker.log_artifacts(out / "report", "report")
        tracker.log_artifacts(out / "bundle", "bundle")
        (out / "config.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
        tracker.log_artifact(out / "config.json")
        registered = None
        if config.register_version:
            registered = tracker.register_bundle(
                run_id,
                config.model_name,
                "bundle",
                config.alias,
                tags={**tags, "model_version": bundle.metadata.model_version},
            )
            log.info("registered %s version %s (alias %s)", registered.name, registered.version, registered.alias)
    return TrainingOutcome(bundle, report, run_id, registered, result.seconds, time.perf_counter() - started)


def calibrate_and_choose_policy(
    bundle: Bundle, validation: LabelledData, targets: DeferralTargets
) -> tuple[Bundle, ThresholdReport]:
    """Fit the temperature on ``validation``, sweep thresholds on the calibrated probabilities, and write
    both into the bundle's metadata."""
    classifier = Classifier(bundle, intra_op_threads=0)
    known, gold, owner_gold = gold_indices(classifier, validation.labels)
    logits = classifier.score_clean(validation.texts).logits[known]
    temperature = fit_temperature(logits, gold) if targets.calibrate else 1.0
    probs = softmax(logits / temperature)
    thresholds = sweep(
        probs,
        gold,
        classifier.owner_probabilities(probs),
        owner_gold,
        targets.category_target,
        targets.owner_target,
        z=targets.z,
    )
    meta = bundle.metadata.model_copy(update={"temperature": temperature, "deferral": thresholds.policy()})
    log.info("temperature %.3f, deferral policy %s", temperature, meta.deferral)
    return write_manifest(bundle.path, list(bundle.labels), bundle.taxonomy, meta), thresholds


def _with_metrics(bundle: Bundle, report: EvaluationReport) -> Bundle:
    """Record the validation metrics in the bundle's metadata (re-checksummed via write_manifest)."""
    metrics = {
        "validation_accuracy": report.scores.accuracy,
        "validation_macro_f1": report.scores.macro_f1,
        "validation_owner_accuracy": report.owner_accuracy,
        "validation_ece": report.calibration.ece,
        "validation_owner_auto_rate": report.deferral.owner_auto_rate,
        "validation_owner_auto_accuracy": report.deferral.owner_auto_accuracy,
    }
    meta = bundle.metadata.model_copy(update={"metrics": {**bundle.metadata.metrics, **metrics}})
    return write_manifest(bundle.path, list(bundle.labels), bundle.taxonomy, meta)
