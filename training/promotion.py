"""Champion/challenger: the promotion gate, promotion and one-command rollback (MLflow registry aliases).

The gate scores both models on one held-out set labelled in the challenger's taxonomy. A champion trained
under the previous taxonomy is scored through the migration (its renamed/merged categories map across; a
category it predicts that was split cannot be right). Per-class F1 may not drop by more than ``tolerance``
on any class both models can predict; classes only the challenger knows are reported, not gated.

Promotion moves ``champion`` to the challenger and ``previous-champion`` to the old champion, then writes the
release file that following servers swap to. Rollback swaps the two aliases back.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from evaluation.scorer import Scores, score
from models.bundle import Bundle, load_bundle
from models.classifier import Classifier
from models.release import Release, write_release
from switchboard.corpus import LabelledData
from switchboard.errors import ConflictError, TaxonomyError
from switchboard.migration import TaxonomyMigration
from switchboard.settings import Settings
from training.tracking import RegisteredVersion, Tracker

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"


class ClassComparison(BaseModel):
    category: str
    support: int
    champion_f1: float | None = Field(description="None: the champion cannot predict this category.")
    challenger_f1: float
    delta: float | None
    p_value: float | None = Field(
        default=None, description="Bootstrap p-value of 'the challenger is not worse on this class'."
    )
    regressed: bool


class ModelScore(BaseModel):
    model_version: str
    taxonomy_version: str
    accuracy: float
    macro_f1: float
    owner_accuracy: float


class GateReport(BaseModel):
    passed: bool
    tolerance: float
    confidence: float
    n: int
    taxonomy_version: str
    champion: ModelScore
    challenger: ModelScore
    per_class: list[ClassComparison]
    regressions: list[str]
    challenger_only: list[str] = Field(description="New or split categories: scored, not gated.")


def _predict(classifier: Classifier, texts: list[str]) -> tuple[list[str], list[str]]:
    probs = classifier.score_clean(texts).probabilities
    owners = classifier.owner_probabilities(probs).argmax(axis=1)
    return [classifier.labels[i] for i in probs.argmax(axis=1)], [classifier.owners[i] for i in owners]


def compare(
    champion: Bundle,
    challenger: Bundle,
    heldout: LabelledData,
    migration: TaxonomyMigration | None = None,
    tolerance: float = 0.02,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> GateReport:
    """Score champion and challenger on ``heldout`` (labels in the challenger's taxonomy).

    A class regresses when the challenger's F1 is more than ``tolerance`` below the champion's *and* the drop
    is significant: a paired bootstrap over the held-out items gives each class a p-value, and Holm's
    procedure keeps the family-wise error at ``1 - confidence`` over all compared classes. With ~40 test items
    a class one item moves F1 by 1-3 points, and with 70 classes some drop by 5 points between any two
    training runs: a bare per-class threshold (or an uncorrected test) would fail on noise.
    """
    taxonomy = challenger.taxonomy
    translate: dict[str, str] = {}
    if champion.taxonomy.version != taxonomy.version:
        if migration is None or (migration.old.version, migration.new.version) != (
            champion.taxonomy.version,
            taxonomy.version,
        ):
            raise TaxonomyError(
                f"champion serves taxonomy {champion.taxonomy.version}, challenger {taxonomy.version}: "
                f"give the migration from {champion.taxonomy.version} to {taxonomy.version}"
            )
        translate = {c: migration.map_label(c) or f"{c} (split/retired)" for c in champion.categories}
    champ_cats, _ = _predict(Classifier(champion, intra_op_threads=0), heldout.texts)
    champ_cats = [translate.get(c, c) for c in champ_cats]
    chall_cats, chall_owners = _predict(Classifier(challenger, intra_op_threads=0), heldout.texts)
    gold_owner = [taxonomy.owner_of(c) for c in heldout.labels]
    # the champion's owner under the new map: the owner of its (translated) category
    champ_owners = [taxonomy.leaf_owner.get(c, "?") for c in champ_cats]
    labels = list(taxonomy.leaf_ids)
    s_champ, s_chall = score(heldout.labels, champ_cats, labels), score(heldout.labels, chall_cats, labels)
    reachable = {translate.get(c, c) for c in champion.categories}
    p_values = bootstrap_p_values(heldout.labels, champ_cats, chall_cats, labels, resamples, seed)
    compared = [c for c in labels if c in reachable and s_chall.per_label[c].support > 0]
    significant = holm({c: float(p_values[labels.index(c)]) for c in compared}, 1 - confidence)
    per_class, regressions, only = [], [], []
    for cat in labels:
        support = s_chall.per_label[cat].support
        if support == 0:
            continue
        chall_f1 = s_chall.per_label[cat].f1
        if cat not in reachable:
            only.append(cat)
            per_class.append(
                ClassComparison(
                    category=cat, support=support, champion_f1=None, challenger_f1=chall_f1, delta=None, regressed=False
                )
            )
            continue
        champ_f1 = s_champ.per_label[cat].f1
        p_value = float(p_values[labels.index(cat)])
        regressed = chall_f1 < champ_f1 - tolerance and cat in significant
        if regressed:
            regressions.append(cat)
        per_class.append(
            ClassComparison(
                category=cat,
                support=support,
                champion_f1=champ_f1,
                challenger_f1=chall_f1,
                delta=chall_f1 - champ_f1,
                p_value=p_value,
                regressed=regressed,
            )
        )

    def model_score(bundle: Bundle, s: Scores, owners: list[str]) -> ModelScore:
        return ModelScore(
            model_version=bundle.metadata.model_version,
            taxonomy_version=bundle.taxonomy.version,
            accuracy=s.accuracy,
            macro_f1=s.macro_f1,
            owner_accuracy=sum(a == b for a, b in zip(owners, gold_owner, strict=True)) / max(1, len(owners)),
        )

    return GateReport(
        passed=not regressions,
        tolerance=tolerance,
        confidence=confidence,
        n=len(heldout),
        taxonomy_version=taxonomy.version,
        champion=model_score(champion, s_champ, champ_owners),
        challenger=model_score(challenger, s_chall, chall_owners),
        per_class=per_class,
        regressions=regressions,
        challenger_only=only,
    )


def holm(p_values: dict[str, float], alpha: float) -> set[str]:
    """The hypotheses Holm's step-down procedure rejects at family-wise error ``alpha``."""
    rejected: set[str] = set()
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    for i, (key, p) in enumerate(ordered):
        if p > alpha / (len(ordered) - i):
            break
        rejected.add(key)
    return rejected


def bootstrap_p_values(
    gold: list[str], champion: list[str], challenger: list[str], labels: list[str], resamples: int, seed: int
) -> NDArray[np.float64]:
    """Per label, the paired-bootstrap p-value of "the challenger's F1 is not below the champion's": the share
    of resamples of the items in which it is not below, (count + 1) / (resamples + 1)."""
    index = {lab: i for i, lab in enumerate(labels)}
    k = len(labels) + 1  # one extra column for predictions outside ``labels``
    n = len(gold)
    if n == 0:
        return np.ones(len(labels))
    g = np.array([index.get(x, k - 1) for x in gold])
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # (B, n)

    def f1(pred_labels: list[str]) -> NDArray[np.float64]:
        p = np.array([index.get(x, k - 1) for x in pred_labels])
        hit = g == p
        gold_1h, pred_1h = np.eye(k)[g], np.eye(k)[p]
        tp = weights @ (gold_1h * hit[:, None])
        fp = weights @ (pred_1h * ~hit[:, None])
        fn = weights @ (gold_1h * ~hit[:, None])
        denom = 2 * tp + fp + fn
        return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)[:, : len(labels)]

    a, b = f1(champion), f1(challenger)
    return np.asarray(((b >= a).sum(axis=0) + 1) / (resamples + 1), dtype=np.float64)


def release(settings: Settings, tracker: Tracker, registered: RegisteredVersion) -> Release:
    """Download the bundle ``registered`` names and point the release file of ``serve_alias`` at it."""
    path = tracker.download_bundle(registered)
    bundle = load_bundle(path)
    out = Release(
        model_name=registered.name,
        registry_version=registered.version,
        alias=settings.serve_alias,
        bundle_path=path,
        model_version=bundle.metadata.model_version,
        taxonomy_version=bundle.taxonomy.version,
    )
    write_release(settings.release_file, out)
    return out


def bundles(settings: Settings, tracker: Tracker) -> tuple[RegisteredVersion, RegisteredVersion]:
    name = settings.registry_model_name
    return tracker.resolve_alias(name, CHAMPION), tracker.resolve_alias(name, CHALLENGER)


def promote(
    settings: Settings,
    heldout: LabelledData,
    migration: TaxonomyMigration | None = None,
    tolerance: float = 0.02,
    dry_run: bool = False,
    report_dir: Path | None = None,
    confidence: float = 0.95,
) -> GateReport:
    """Run the gate; if it passes (and not ``dry_run``), make the challenger the champion and release it."""
    tracker = Tracker(settings)
    name = settings.registry_model_name
    champ_ref, chall_ref = bundles(settings, tracker)
    if champ_ref.version == chall_ref.version:
        raise ConflictError(f"{name}@{CHALLENGER} is already the champion (version {champ_ref.version})")
    champion = load_bundle(tracker.download_bundle(champ_ref))
    challenger = load_bundle(tracker.download_bundle(chall_ref))
    report = compare(champion, challenger, heldout, migration, tolerance, confidence)
    folder = report_dir or settings.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
    (folder / f"promotion-{stamp}-v{chall_ref.version}.json").write_text(
        report.model_dump_json(indent=1), encoding="utf-8"
    )
    tracker.set_version_tags(
        name,
        chall_ref.version,
        {
            "gate_passed": str(report.passed).lower(),
            "gate_against": champ_ref.version,
            "gate_regressions": json.dumps(report.regressions),
        },
    )
    if report.passed and not dry_run:
        tracker.set_alias(name, PREVIOUS, champ_ref.version)
        tracker.set_alias(name, CHAMPION, chall_ref.version)
        tracker.delete_alias(name, CHALLENGER)
        release(settings, tracker, tracker.resolve_alias(name, CHAMPION))
        log.info("promoted %s v%s to champion (previous v%s)", name, chall_ref.version, champ_ref.version)
    return report


def rollback(settings: Settings) -> tuple[RegisteredVersion, RegisteredVersion]:
    """Swap ``champion`` and ``previous-champion`` and release the restored model: (restored, demoted)."""
    tracker = Tracker(settings)
    name = settings.registry_model_name
    current = tracker.resolve_alias(name, CHAMPION)
    previous = tracker.resolve_alias(name, PREVIOUS)
    tracker.set_alias(name, CHAMPION, previous.version)
    tracker.set_alias(name, PREVIOUS, current.version)
    restored = tracker.resolve_alias(name, CHAMPION)
    release(settings, tracker, restored)
    return restored, tracker.resolve_alias(name, PREVIOUS)


def register_bundle(
    settings: Settings, bundle: Bundle, alias: str | None, experiment: str, tags: dict[str, str]
) -> str:
    """Track and register an already-built bundle (e.g. one carried to a new taxonomy); returns its version."""
    tracker = Tracker(settings)
    tags = {
        "taxonomy_version": bundle.taxonomy.version,
        "parent_model": tracker.champion_ref(settings.registry_model_name),
        **tags,
    }
    with tracker.run(f"{experiment}/{bundle.taxonomy.version}", tags=tags) as run_id:
        tracker.log_artifacts(bundle.path, "bundle")
        registered = tracker.register_bundle(
            run_id,
            settings.registry_model_name,
            "bundle",
            alias,
            tags={**tags, "model_version": bundle.metadata.model_version},
        )
    return registered.version
