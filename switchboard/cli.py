"""The `switchboard` command line: train, export, evaluate, serve, classify, demo.

Commands import their heavy dependencies lazily, so `serve` and `classify` never import torch.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from switchboard.errors import SwitchboardError
from switchboard.settings import Settings, load_settings

app = typer.Typer(
    help="Switchboard: classify customer feedback and route it to the accountable owner.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "training" / "configs" / "demo.yaml"


def _offline() -> None:
    """Nothing downloads from a model hub at run time."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cli_errors(fn: F) -> F:
    """Print a Switchboard error as one line naming the problem and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for ours in ("training", "models", "serving", "evaluation", "switchboard"):
            logging.getLogger(ours).setLevel(logging.INFO)
        _offline()
        try:
            return fn(*args, **kwargs)
        except SwitchboardError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _resolve_bundle(settings: Settings, bundle: Path | None, alias: str | None = None) -> Path:
    """An explicit bundle folder, else the registry's alias (default: champion) fetched locally."""
    if bundle is not None:
        return bundle
    if settings.bundle_path is not None:
        return settings.bundle_path
    from training.tracking import Tracker

    tracker = Tracker(settings)
    return tracker.download_bundle(tracker.resolve_alias(settings.registry_model_name, alias or settings.serve_alias))


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Training config YAML.")]
BundleOpt = Annotated[Path | None, typer.Option("--bundle", "-b", help="Model bundle folder.")]
AliasOpt = Annotated[str | None, typer.Option(help="Registry alias to use when no bundle is given.")]


@app.command()
@cli_errors
def train(
    config: ConfigOpt,
    output_dir: Annotated[Path | None, typer.Option(help="Where checkpoint, bundle and report go.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override hyperparameters.epochs.")] = None,
) -> None:
    """Fine-tune, export to an ONNX bundle, evaluate, track in MLflow and register the model."""
    from training.config import TrainingConfig
    from training.pipeline import run_training

    cfg = TrainingConfig.load(config, output_dir=str(output_dir) if output_dir else None)
    if epochs is not None:
        cfg = cfg.model_copy(update={"hyperparameters": cfg.hyperparameters.model_copy(update={"epochs": epochs})})
    outcome = run_training(cfg, _settings())
    _print_outcome(outcome)


def _print_outcome(outcome: Any) -> None:
    typer.echo(f"bundle: {outcome.bundle.path}")
    typer.echo(f"model: {outcome.bundle.metadata.model_name} {outcome.bundle.metadata.model_version}")
    if outcome.report is not None:
        s = outcome.report.scores
        typer.echo(
            f"validation accuracy {s.accuracy:.4f}, macro-F1 {s.macro_f1:.4f}, "
            f"owner accuracy {outcome.report.owner_accuracy:.4f}"
        )
    if outcome.registered is not None:
        typer.echo(
            f"registered {outcome.registered.name} v{outcome.registered.version} "
            f"alias={outcome.registered.alias} (MLflow run {outcome.run_id})"
        )
    typer.echo(f"fine-tune {outcome.fit_seconds:.1f}s, total {outcome.total_seconds:.1f}s")


@app.command()
@cli_errors
def export(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint folder written by `train`.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write (replaced).")],
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 quantization.")] = True,
    model_name: Annotated[str, typer.Option()] = "switchboard-classifier",
) -> None:
    """Export a training checkpoint to an ONNX bundle, failing if parity with torch breaks."""
    from models.export import export_bundle
    from training.network import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    bundle, parity = export_bundle(ckpt, out, ckpt.parity_texts, model_name=model_name, quantize=quantize)
    typer.echo(
        json.dumps(
            {"bundle": str(bundle.path), "model_version": bundle.metadata.model_version, "parity": parity}, indent=2
        )
    )


@app.command()
@cli_errors
def evaluate(
    data: Annotated[Path, typer.Option(help="Labelled CSV/JSONL/Parquet file.")],
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.md.")] = Path("reports/latest"),
) -> None:
    """Accuracy, macro-F1, per-class P/R/F1, owner accuracy and confusion matrix → JSON + Markdown."""
    from evaluation.report import evaluate_bundle, write_report
    from models.bundle import load_bundle
    from switchboard.corpus import read_labelled

    loaded = load_bundle(_resolve_bundle(_settings(), bundle, alias))
    corpus = read_labelled(data, text_column, label_column, loaded.taxonomy)
    report = evaluate_bundle(loaded, corpus, split=data.name)
    json_path, md_path = write_report(report, out)
    typer.echo(
        f"accuracy {report.scores.accuracy:.4f}  macro-F1 {report.scores.macro_f1:.4f}  "
        f"owner accuracy {report.owner_accuracy:.4f}  (n={report.n})"
    )
    typer.echo(f"wrote {json_path} and {md_path}")


@app.command()
@cli_errors
def classify(
    texts: Annotated[list[str], typer.Argument(help="Feedback texts to classify.")],
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
) -> None:
    """Classify texts with a bundle (or the registry's champion) and print JSON."""
    from models.bundle import load_bundle
    from models.classifier import Classifier

    settings = _settings()
    classifier = Classifier(load_bundle(_resolve_bundle(settings, bundle, alias)), max_chars=settings.max_text_chars)
    out = [{"text": t, **p.model_dump()} for t, p in zip(texts, classifier.predict(texts), strict=True)]
    typer.echo(json.dumps({"model": classifier.info.model_dump(), "results": out}, indent=2))


@app.command()
@cli_errors
def serve(
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the HTTP API for a bundle, or for the registry's champion."""
    _serve(_settings(host=host, port=port), bundle, alias)


def _serve(settings: Settings, bundle: Path | None, alias: str | None) -> None:
    import uvicorn

    from serving.app import create_app

    if bundle is None and settings.bundle_path is None:
        # follow the registry alias: release it locally, and swap whenever promotion or rollback moves it
        from training.promotion import release
        from training.tracking import Tracker

        if alias:
            settings = settings.model_copy(update={"serve_alias": alias})
        tracker = Tracker(settings)
        released = release(settings, tracker, tracker.resolve_alias(settings.registry_model_name, settings.serve_alias))
        path = released.bundle_path
        settings = settings.model_copy(update={"bundle_path": path, "follow_release": True})
    else:
        path = _resolve_bundle(settings, bundle, alias)
        settings = settings.model_copy(update={"bundle_path": path})
    typer.echo(f"serving {path} on http://{settings.host}:{settings.port} (docs at /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
@cli_errors
def demo(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    retrain: Annotated[bool, typer.Option(help="Train even if a champion exists.")] = False,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after training.")] = False,
) -> None:
    """The main job on embedded defaults: train on the bundled demo data if no champion exists, then serve."""
    from switchboard.errors import TrackingError
    from training.config import TrainingConfig
    from training.pipeline import run_training
    from training.tracking import Tracker

    settings = _settings(host=host, port=port)
    tracker = Tracker(settings)
    champion = None
    if not retrain:
        try:
            champion = tracker.resolve_alias(settings.registry_model_name, settings.serve_alias)
        except TrackingError:
            champion = None
    if champion is not None:
        typer.echo(f"champion exists: {champion.name} v{champion.version}; not retraining (use --retrain)")
    else:
        cfg = TrainingConfig.load(DEMO_CONFIG, output_dir=str(settings.home / "runs" / "demo"))
        cfg = cfg.model_copy(update={"model_name": settings.registry_model_name, "alias": settings.serve_alias})
        _print_outcome(run_training(cfg, settings))
    if not no_serve:
        _serve(settings, None, None)


@app.command()
@cli_errors
def thresholds(
    data: Annotated[Path, typer.Option(help="Labelled held-out file (not the training data).")],
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    owner_target: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.98,
    category_target: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.95,
    z: Annotated[float, typer.Option(min=0.0, help="Wilson lower-bound z (0: point estimate).")] = 1.645,
    apply: Annotated[bool, typer.Option(help="Write the chosen policy into the bundle.")] = False,
) -> None:
    """Sweep deferral thresholds: coverage vs accuracy per field, and the policy that meets the targets."""
    from evaluation.thresholds import coverage_table, gold_indices, sweep
    from models.bundle import load_bundle, write_manifest
    from models.classifier import Classifier
    from switchboard.corpus import read_labelled

    loaded = load_bundle(_resolve_bundle(_settings(), bundle, alias))
    clf = Classifier(loaded, intra_op_threads=0)
    corpus = read_labelled(data, text_column, label_column, loaded.taxonomy)
    known, gold, owner_gold = gold_indices(clf, corpus.labels)
    probs = clf.score_clean(corpus.texts).probabilities
    report = sweep(
        probs[known], gold, clf.owner_probabilities(probs[known]), owner_gold, category_target, owner_target, z=z
    )
    for field_sweep in (report.category, report.owner):
        typer.echo(coverage_table(field_sweep) + "\n")
        chosen = field_sweep.chosen
        typer.echo(
            f"{field_sweep.field}: "
            + (
                f"threshold {chosen.threshold:.2f}, margin {chosen.min_margin:.2f} → coverage {chosen.coverage:.3f}, "
                f"accuracy {chosen.accuracy:.4f} (target {field_sweep.target})"
                if chosen
                else f"no setting reaches {field_sweep.target}: every item goes to review"
            )
            + "\n"
        )
    if apply:
        meta = loaded.metadata.model_copy(update={"deferral": report.policy()})
        write_manifest(loaded.path, list(loaded.labels), loaded.taxonomy, meta)
        typer.echo(f"policy written to {loaded.path / 'metadata.json'}")


review_app = typer.Typer(help="The review queue: label export and label-quality checks.", no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("export")
@cli_errors
def review_export(
    out: Annotated[Path, typer.Option(help=".parquet, .csv or .jsonl")],
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    text_column: Annotated[str, typer.Option(help="Match the training config's data.text_column.")] = "text",
    label_column: Annotated[str, typer.Option(help="Match the training config's data.label_column.")] = "label",
) -> None:
    """Export accepted labels (newest per item, taxonomy in force) as a training data set."""
    from labeling.export import export_labels

    taxonomy = _taxonomy(bundle, alias)
    n = export_labels(_database(), taxonomy, out, text_column=text_column, label_column=label_column)
    typer.echo(f"wrote {n} labels (taxonomy {taxonomy.version}) to {out}")


@review_app.command("label-issues")
@cli_errors
def review_label_issues(
    data: Annotated[Path | None, typer.Option(help="Check a labelled file instead of the stored labels.")] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    show: Annotated[int, typer.Option(min=0)] = 20,
) -> None:
    """Find likely label errors (confident learning); stored ones are queued for re-review."""
    from labeling.quality import find_label_issues, queue_label_issues
    from models.bundle import load_bundle
    from models.classifier import Classifier
    from switchboard.corpus import read_labelled

    loaded = load_bundle(_resolve_bundle(_settings(), bundle, alias))
    clf = Classifier(loaded, intra_op_threads=0)
    if data is not None:
        corpus = read_labelled(data, text_column, label_column, loaded.taxonomy)
        issues = find_label_issues(clf, corpus.texts, corpus.labels)
        typer.echo(f"{len(issues)} likely label errors in {len(corpus)} rows of {data}")
    else:
        issues, task_ids = queue_label_issues(_database(), clf)
        typer.echo(f"{len(issues)} likely label errors in the stored labels; {len(task_ids)} queued for re-review")
    for issue in issues[:show]:
        typer.echo(
            json.dumps(
                {
                    "row": issue.index + 1,
                    "text": issue.text,
                    "given": issue.given,
                    "suggested": issue.suggested,
                    "self_confidence": round(issue.self_confidence, 4),
                }
            )
        )


@app.command()
@cli_errors
def retrain(
    config: ConfigOpt,
    corrections: Annotated[Path, typer.Option(help="Exported labels (`switchboard review export`).")],
    test: Annotated[Path, typer.Option(help="Fixed labelled test set for the before/after comparison.")],
    test_label_column: Annotated[str, typer.Option()] = "label",
    output_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Retrain with the human corrections added, track it, and compare it with the current champion on `test`."""
    from evaluation.report import evaluate_bundle
    from models.bundle import load_bundle
    from switchboard.corpus import read_labelled
    from training.config import TrainingConfig
    from training.pipeline import run_training

    settings = _settings()
    cfg = TrainingConfig.load(config, output_dir=str(output_dir) if output_dir else None)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"extra": [*cfg.data.extra, corrections]})})
    before_bundle = load_bundle(_resolve_bundle(settings, None, None))
    corpus = read_labelled(test, "text", test_label_column, before_bundle.taxonomy)
    before = evaluate_bundle(before_bundle, corpus, split=test.name)
    outcome = run_training(cfg, settings)
    after = evaluate_bundle(outcome.bundle, corpus, split=test.name)
    result = {
        "test": str(test),
        "n": after.n,
        "before": {
            "model": before.model.version,
            "accuracy": before.scores.accuracy,
            "macro_f1": before.scores.macro_f1,
            "owner_accuracy": before.owner_accuracy,
        },
        "after": {
            "model": after.model.version,
            "accuracy": after.scores.accuracy,
            "macro_f1": after.scores.macro_f1,
            "owner_accuracy": after.owner_accuracy,
            "mlflow_run": outcome.run_id,
            "registered_version": outcome.registered.version if outcome.registered else None,
        },
    }
    typer.echo(json.dumps(result, indent=2))


taxonomy_app = typer.Typer(
    help="Taxonomy refresh: check a migration, apply it to stored labels, carry a bundle across.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")
MigrationArg = Annotated[Path, typer.Argument(help="Migration YAML (names the old and new taxonomy files).")]


@taxonomy_app.command("diff")
@cli_errors
def taxonomy_diff(migration: MigrationArg) -> None:
    """Check a migration against both taxonomies and print every change it makes."""
    from switchboard.migration import TaxonomyMigration

    m = TaxonomyMigration.load(migration)
    typer.echo(json.dumps({**m.diff.as_dict(), "mapping": m.mapping, "relabel": m.relabel}, indent=2))
    typer.echo(
        "no retraining needed (owners, names or parents only)"
        if m.owner_only
        else f"needs seed examples: {', '.join(m.needs_seed_examples) or 'none'}",
        err=True,
    )


@taxonomy_app.command("migrate")
@cli_errors
def taxonomy_migrate(
    migration: MigrationArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; write nothing.")] = False,
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    show: Annotated[int, typer.Option(min=0, help="Relabel items to list (dry run).")] = 20,
) -> None:
    """Apply a migration to the stored labels and review tasks (renames/merges map; splits go to relabel)."""
    from labeling import refresh
    from models.bundle import load_bundle
    from models.classifier import Classifier
    from switchboard.errors import BundleError, TrackingError
    from switchboard.migration import TaxonomyMigration

    m = TaxonomyMigration.load(migration)
    settings = _settings()
    scorer = None
    try:
        clf = Classifier(load_bundle(_resolve_bundle(settings, bundle, alias)), intra_op_threads=0)
        if clf.bundle.taxonomy.version == m.old.version:
            scorer = clf.category_scores
    except (BundleError, TrackingError) as exc:
        typer.echo(f"no current model to pre-sort relabel items ({exc}); they keep file order", err=True)
    db = _database()
    result = refresh.plan(db, m, scorer) if dry_run else refresh.apply(db, m, scorer)
    typer.echo(json.dumps(result.summary(), indent=2))
    if result.already_applied:
        typer.echo(f"migration {m.old.version} -> {m.new.version} was already applied: nothing changed", err=True)
        return
    if dry_run:
        for item in result.relabel[:show]:
            typer.echo(
                json.dumps(
                    {
                        "feedback_id": item.feedback_id,
                        "from": item.old_category,
                        "choose": list(item.candidates),
                        "priority": item.priority,
                        "text": item.text[:120],
                    }
                )
            )
        typer.echo("dry run: nothing was written", err=True)


@taxonomy_app.command("map-data")
@cli_errors
def taxonomy_map_data(
    migration: MigrationArg,
    data: Annotated[Path, typer.Option(help="Labelled file under the old taxonomy.")],
    out: Annotated[Path, typer.Option(help="CSV with labels under the new taxonomy.")],
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
) -> None:
    """Map a labelled file to the new taxonomy; rows that need a human go to <out>.relabel.csv."""
    import csv

    from switchboard.corpus import read_labelled
    from switchboard.migration import TaxonomyMigration

    m = TaxonomyMigration.load(migration)
    corpus = read_labelled(data, text_column, label_column, m.old)
    relabel_path = out.with_suffix(".relabel.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    mapped = pending = 0
    with out.open("w", newline="", encoding="utf-8") as fh, relabel_path.open("w", newline="", encoding="utf-8") as rh:
        ok, todo = csv.writer(fh), csv.writer(rh)
        ok.writerow([text_column, label_column])
        todo.writerow([text_column, f"old_{label_column}", "candidates"])
        for text, label in zip(corpus.texts, corpus.labels, strict=True):
            target = m.map_label(label)
            if target is None:
                todo.writerow([text, label, "|".join(m.relabel[label])])
                pending += 1
            else:
                ok.writerow([text, target])
                mapped += 1
    typer.echo(f"{mapped} rows mapped to {m.new.version} in {out}; {pending} need relabelling in {relabel_path}")


@taxonomy_app.command("carry-bundle")
@cli_errors
def taxonomy_carry_bundle(
    migration: MigrationArg,
    out: Annotated[Path, typer.Option(help="Folder for the carried bundle (replaced).")],
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    register: Annotated[bool, typer.Option(help="Register it as the challenger.")] = False,
) -> None:
    """Serve the new taxonomy with the current network (renames, merges, owner moves): no retraining."""
    from models.bundle import load_bundle, migrate_bundle
    from switchboard.migration import TaxonomyMigration

    m = TaxonomyMigration.load(migration)
    settings = _settings()
    carried = migrate_bundle(load_bundle(_resolve_bundle(settings, bundle, alias)), m, out)
    typer.echo(f"bundle {carried.path}: model {carried.metadata.model_version}, taxonomy {carried.taxonomy.version}")
    if register:
        from training.promotion import CHALLENGER, register_bundle

        version = register_bundle(settings, carried, CHALLENGER, "switchboard-carried", {"carried_by": str(migration)})
        typer.echo(f"registered {settings.registry_model_name} v{version} as {CHALLENGER}")


@app.command()
@cli_errors
def promote(
    heldout: Annotated[Path, typer.Option(help="Held-out labelled file (never trained on).")],
    label_column: Annotated[str, typer.Option()] = "label",
    text_column: Annotated[str, typer.Option()] = "text",
    migration: Annotated[
        Path | None, typer.Option(help="Migration from the champion's taxonomy; held-out labels may use either.")
    ] = None,
    tolerance: Annotated[float, typer.Option(min=0.0, max=1.0, help="Allowed per-class F1 drop.")] = 0.02,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="1 - family-wise error of the per-class drop tests.")
    ] = 0.95,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Run the gate only.")] = False,
) -> None:
    """Compare challenger with champion on a held-out set; if no class regresses, promote and release it."""
    from models.bundle import load_bundle
    from switchboard.corpus import LabelledData, read_labelled
    from switchboard.errors import DataError
    from switchboard.migration import TaxonomyMigration
    from training.promotion import CHALLENGER
    from training.promotion import promote as run_gate
    from training.tracking import Tracker

    settings = _settings()
    m = TaxonomyMigration.load(migration) if migration else None
    tracker = Tracker(settings)
    challenger = load_bundle(tracker.download_bundle(tracker.resolve_alias(settings.registry_model_name, CHALLENGER)))
    try:
        data = read_labelled(heldout, text_column, label_column, challenger.taxonomy)
    except DataError:
        if m is None:
            raise
        old = read_labelled(heldout, text_column, label_column, m.old)
        keep = [i for i, lab in enumerate(old.labels) if m.map_label(lab) is not None]
        data = LabelledData([old.texts[i] for i in keep], [m.map_label(old.labels[i]) or "" for i in keep])
        typer.echo(
            f"held-out labels mapped {m.old.version} -> {m.new.version}; {len(old) - len(keep)} split/retired "
            "rows left out",
            err=True,
        )
    report = run_gate(settings, data, m, tolerance, dry_run, confidence=confidence)
    typer.echo(report.model_dump_json(indent=1))
    verdict = "PASSED" if report.passed else f"FAILED (regressed: {', '.join(report.regressions)})"
    action = "dry run, aliases unchanged" if dry_run or not report.passed else "challenger is now champion"
    typer.echo(f"gate {verdict}: {action}", err=True)
    if not report.passed:
        raise typer.Exit(code=1)


@app.command()
@cli_errors
def rollback() -> None:
    """Make the previous champion the champion again (and release it to following servers)."""
    from training.promotion import rollback as run_rollback

    restored, demoted = run_rollback(_settings())
    typer.echo(f"champion is v{restored.version} again; v{demoted.version} is now previous-champion")


@app.command()
@cli_errors
def backfill(
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 256,
    max_items: Annotated[int | None, typer.Option(min=1, help="Stop after this many (resume later).")] = None,
) -> None:
    """Re-classify stored feedback under the model's taxonomy (resumable; progress bar)."""
    from models.bundle import load_bundle
    from models.classifier import Classifier
    from serving.backfill import backfill as run_backfill
    from serving.backfill import pending_count

    settings = _settings()
    clf = Classifier(load_bundle(_resolve_bundle(settings, bundle, alias)), intra_op_threads=0)
    db = _database()
    total = pending_count(db, clf.info.taxonomy_version)
    if max_items is not None:
        total = min(total, max_items)
    with typer.progressbar(length=total, label=f"backfill -> {clf.info.taxonomy_version}", file=None) as bar:
        result = run_backfill(db, clf, batch_size=batch_size, max_items=max_items, on_batch=bar.update)
    typer.echo(
        f"classified {result.classified} items with {result.model_version} in {result.batches} batches; "
        f"{result.remaining} still without a {result.taxonomy_version} prediction"
    )


webhooks_app = typer.Typer(help="Owner webhooks: where each owner's notifications go.", no_args_is_help=True)
outbox_app = typer.Typer(help="The notification outbox: deliver, list, retry.", no_args_is_help=True)
alerts_app = typer.Typer(help="Spike alerts per category and owner (Poisson baseline).", no_args_is_help=True)
report_app = typer.Typer(help="Accountability reports (JSON + HTML with charts).", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(outbox_app, name="outbox")
app.add_typer(alerts_app, name="alerts")
app.add_typer(report_app, name="report")


def _taxonomy(bundle: Path | None, alias: str | None) -> Any:
    """The taxonomy in force: the served bundle's."""
    from models.bundle import load_bundle

    return load_bundle(_resolve_bundle(_settings(), bundle, alias)).taxonomy


@webhooks_app.command("set")
@cli_errors
def webhooks_set(
    owner: Annotated[str, typer.Argument(help="Owner id from the taxonomy.")],
    url: Annotated[str, typer.Option(help="http(s) URL that receives the POSTed events.")],
    secret: Annotated[str, typer.Option(help="At least 16 characters; signs every payload.")],
    inactive: Annotated[bool, typer.Option("--inactive", help="Keep events queued, deliver nothing.")] = False,
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
) -> None:
    """Point an owner's notifications at a webhook (replaces the previous one)."""
    from accountability.outbox import set_webhook

    hook = set_webhook(_database(), _taxonomy(bundle, alias), owner, url, secret, active=not inactive)
    typer.echo(f"{hook.owner}: {hook.url} ({'active' if hook.active else 'inactive'})")


@webhooks_app.command("delete")
@cli_errors
def webhooks_delete(owner: Annotated[str, typer.Argument()]) -> None:
    """Remove an owner's webhook (its events wait in the outbox)."""
    from accountability.outbox import delete_webhook

    delete_webhook(_database(), owner)
    typer.echo(f"{owner}: webhook removed")


@outbox_app.command("deliver")
@cli_errors
def outbox_deliver(
    loop: Annotated[bool, typer.Option(help="Keep delivering every --interval seconds.")] = False,
    interval: Annotated[float, typer.Option(min=0.1)] = 1.0,
) -> None:
    """Deliver due notifications (what a server does in the background), once or in a loop."""
    import time

    from accountability.background import dispatcher

    worker = dispatcher(_database(), _settings())
    while True:
        stats = worker.deliver_due()
        typer.echo(f"delivered {stats.delivered}, to retry {stats.retried}, dead {stats.dead}")
        for error in stats.errors[:5]:
            typer.echo(f"  {error}", err=True)
        if not loop:
            return
        time.sleep(interval)


@outbox_app.command("list")
@cli_errors
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead")] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Notifications, newest first."""
    from dataclasses import asdict

    from accountability.outbox import list_outbox

    for item in list_outbox(_database(), status, owner, limit):
        typer.echo(json.dumps(asdict(item), default=str))


@outbox_app.command("retry")
@cli_errors
def outbox_retry(outbox_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Give a dead notification a fresh set of attempts."""
    from accountability.outbox import retry_dead

    retry_dead(_database(), outbox_id)
    typer.echo(f"outbox event {outbox_id} is pending again")


@alerts_app.command("scan")
@cli_errors
def alerts_scan(
    day: Annotated[str | None, typer.Option(help="Last day to scan, YYYY-MM-DD (default: today, UTC).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366)] = 1,
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
) -> None:
    """Scan days for spikes; new ones are stored and sent to their owners through the outbox."""
    from datetime import UTC, date, datetime

    from accountability.alerts import SpikePolicy, days_ending, scan
    from switchboard.errors import InputError

    settings = _settings()
    try:
        end = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        raise InputError(f"--day must be YYYY-MM-DD, got '{day}'") from None
    window = days_ending(end, days)
    policy = SpikePolicy.from_settings(settings)
    found = scan(_database(), _taxonomy(bundle, alias), window, policy)
    typer.echo(f"{len(found)} new spike(s) in {window[0]}..{window[-1]}")
    for spike in found:
        typer.echo(
            f"{spike.day} {spike.scope} {spike.key} (owner {spike.owner}): {spike.observed} items, "
            f"expected {spike.expected:.2f}, p={spike.p_value:.2g}"
        )


@report_app.command("monthly")
@cli_errors
def report_monthly(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    out: Annotated[Path, typer.Option(help="Folder for the JSON and HTML files.")] = Path("reports"),
    owner: Annotated[
        list[str] | None, typer.Option(help="Also one report per owner (repeatable); 'all' for every owner.")
    ] = None,
    bundle: BundleOpt = None,
    alias: AliasOpt = None,
) -> None:
    """The monthly accountability report: leadership, and optionally per owner, as JSON + HTML."""
    from accountability.report import monthly_report, render_html

    settings = _settings()
    taxonomy = _taxonomy(bundle, alias)
    db = _database()
    scopes: list[str | None] = [None]
    wanted = owner or []
    scopes += [o.id for o in taxonomy.owners] if "all" in wanted else list(wanted)
    out.mkdir(parents=True, exist_ok=True)
    for scope in scopes:
        built = monthly_report(db, taxonomy, month, scope, settings.case_sla_days)
        stem = out / f"accountability-{built.month}-{built.scope}"
        stem.with_suffix(".json").write_text(built.model_dump_json(indent=1), encoding="utf-8")
        stem.with_suffix(".html").write_text(render_html(built), encoding="utf-8")
        typer.echo(f"wrote {stem}.json and {stem}.html ({built.total_volume} items)")


keys_app = typer.Typer(
    help="API keys (stored hashed): service → classify, annotator → review, admin → all.", no_args_is_help=True
)
db_app = typer.Typer(
    help="The Switchboard database (SQLite by default, PostgreSQL via SWITCHBOARD_DATABASE_URL).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


def _database() -> Any:
    from switchboard.storage import Database

    db = Database(_settings().database)
    db.upgrade()
    return db


@db_app.command("upgrade")
@cli_errors
def db_upgrade() -> None:
    """Apply the database migrations (idempotent)."""
    db = _database()
    typer.echo(f"database at revision {db.current_revision()}")


@keys_app.command("create")
@cli_errors
def keys_create(
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. the calling platform.")],
    role: Annotated[str, typer.Option(help="service, annotator or admin.")],
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from switchboard.access import create_key

    key, token = create_key(_database(), name, role)
    typer.echo(json.dumps({"id": key.id, "name": key.name, "role": key.role.value, "key": token}, indent=2))
    typer.echo("store the key now: it cannot be shown again", err=True)


@keys_app.command("list")
@cli_errors
def keys_list() -> None:
    """List keys (never their secrets)."""
    from switchboard.access import list_keys

    rows = [
        {
            "id": k.id,
            "name": k.name,
            "role": k.role.value,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in list_keys(_database())
    ]
    typer.echo(json.dumps(rows, indent=2))


@keys_app.command("revoke")
@cli_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (the part after sb_).")]) -> None:
    """Revoke a key; a running server stops accepting it within its key cache TTL."""
    from switchboard.access import revoke_key

    key = revoke_key(_database(), key_id)
    typer.echo(f"revoked {key.id} ({key.name}, {key.role.value})")


if __name__ == "__main__":
    app()
