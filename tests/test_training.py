"""The spaCy/sentence-transformers style round trip on a tiny real network: overfit a few examples,
save, reload, same predictions; export to ONNX; batch equals single."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.bundle import load_bundle
from models.classifier import Classifier
from models.export import export_bundle
from switchboard.corpus import LabelledData
from switchboard.errors import ConfigError, ParityError
from switchboard.taxonomy import Taxonomy
from switchboard.tokenization import Encoder
from tests.conftest import tiny_config_dict
from training.config import HyperParameters, ParityTolerance, TrainingConfig
from training.network import Checkpoint, load_checkpoint, resolve_base_model, save_checkpoint
from training.trainer import FitResult, fit, predict_logits

FEW = LabelledData(
    texts=[
        "charged twice for one order",
        "two payments taken for the same delivery",
        "the app crashes at checkout",
        "website shows an error page",
        "driver was two hours late",
        "my delivery never arrived",
    ],
    labels=["double_charge", "double_charge", "app_crash", "app_crash", "late_delivery", "late_delivery"],
)
LABELS = ["late_delivery", "double_charge", "app_crash"]


@pytest.fixture(scope="module")
def overfit(tiny_base_model: Path) -> FitResult:
    hp = HyperParameters(
        epochs=25,
        batch_size=3,
        learning_rate=3e-3,
        head_learning_rate=1e-2,
        dropout=0.0,
        warmup_ratio=0.0,
        max_length=32,
        seed=0,
        threads=2,
    )
    return fit(tiny_base_model, FEW, FEW, LABELS, hp)


def _save(overfit: FitResult, base: Path, tmp_path: Path, taxonomy: Taxonomy) -> Checkpoint:
    info = {"max_length": 32, "dropout": 0.0, "base_model": "tiny"}
    return save_checkpoint(tmp_path / "ckpt", overfit.model, base / "tokenizer.json", LABELS, taxonomy, info, FEW.texts)


def test_overfits_a_few_examples(overfit: FitResult) -> None:
    assert overfit.history[-1]["val_accuracy"] == 1.0
    assert overfit.history[-1]["train_loss"] < overfit.history[0]["train_loss"] / 5


def test_save_reload_gives_same_predictions(
    overfit: FitResult, tiny_base_model: Path, tmp_path: Path, demo_taxonomy: Taxonomy
) -> None:
    enc = Encoder.from_file(tiny_base_model / "tokenizer.json", 32)
    before = predict_logits(overfit.model, enc, FEW.texts)
    _save(overfit, tiny_base_model, tmp_path, demo_taxonomy)
    reloaded = load_checkpoint(tmp_path / "ckpt")
    assert reloaded.labels == LABELS
    np.testing.assert_allclose(predict_logits(reloaded.model, enc, FEW.texts), before, atol=1e-5)


@pytest.mark.parametrize("quantize", [False, True])
def test_exported_bundle_matches_torch_and_batch_equals_single(
    overfit: FitResult, tiny_base_model: Path, tmp_path: Path, demo_taxonomy: Taxonomy, quantize: bool
) -> None:
    ckpt = _save(overfit, tiny_base_model, tmp_path, demo_taxonomy)
    tol = ParityTolerance(int8_min_top1_agreement=0.8, int8_max_prob_diff=0.6, int8_max_mean_prob_diff=0.05)
    bundle, parity = export_bundle(ckpt, tmp_path / "bundle", FEW.texts, "t", quantize=quantize, tolerance=tol)
    assert parity["fp32_top1_agreement"] == 1.0
    assert parity["fp32_max_prob_diff"] < 1e-4
    assert bundle.metadata.quantization == ("int8-dynamic" if quantize else "none")
    clf = Classifier(load_bundle(tmp_path / "bundle"))
    batch = clf.predict(FEW.texts)
    singles = [clf.predict([t])[0] for t in FEW.texts]
    for b, s in zip(batch, singles, strict=True):
        assert b.category.id == s.category.id
        # fp32: the same numbers up to float noise; dynamic int8 picks activation scales per batch
        assert b.category.confidence == pytest.approx(s.category.confidence, abs=0.05 if quantize else 1e-5)
    if not quantize:
        assert [p.category.id for p in batch] == FEW.labels


def test_impossible_parity_tolerance_fails_the_export_and_writes_nothing(
    overfit: FitResult, tiny_base_model: Path, tmp_path: Path, demo_taxonomy: Taxonomy
) -> None:
    ckpt = _save(overfit, tiny_base_model, tmp_path, demo_taxonomy)
    strict = ParityTolerance(fp32_max_prob_diff=1e-12)
    with pytest.raises(ParityError, match="fp32 ONNX differs"):
        export_bundle(ckpt, tmp_path / "bundle", FEW.texts, "t", quantize=False, tolerance=strict)
    assert not (tmp_path / "bundle").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging folder left behind


def test_config_rebases_paths_and_rejects_bad_values(tmp_path: Path, tiny_base_model: Path) -> None:
    import yaml

    raw = tiny_config_dict(tiny_base_model, tmp_path / "out")
    raw["taxonomy"] = "tax.yaml"
    raw["data"]["train"] = "data/train.csv"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = TrainingConfig.load(tmp_path / "cfg.yaml")
    assert cfg.taxonomy == (tmp_path / "tax.yaml").resolve()
    assert cfg.data.train == (tmp_path / "data" / "train.csv").resolve()
    raw["hyperparameters"]["epochs"] = 0
    raw["hyperparameters"]["learnin_rate"] = 1.0
    with pytest.raises(ConfigError, match=r"hyperparameters.epochs: .*greater than or equal to 1.*learnin_rate"):
        TrainingConfig.from_dict(raw)
    with pytest.raises(ConfigError, match="not found"):
        TrainingConfig.load(tmp_path / "missing.yaml")


def test_base_model_is_never_fetched_from_a_hub(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        resolve_base_model("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ConfigError, match="unknown built-in"):
        resolve_base_model("builtin:bert-large")
    assert (resolve_base_model("builtin:all-MiniLM-L6-v2") / "model.safetensors").is_file()
