"""The annotator page in a real browser: headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models.bundle import load_bundle, write_manifest
from switchboard.deferral import DeferralPolicy, FieldPolicy
from switchboard.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, running_server

pytestmark = pytest.mark.browser


@pytest.fixture
def server(bundle_copy: Path, tmp_path: Path) -> Iterator[str]:
    bundle = load_bundle(bundle_copy)
    review_all = DeferralPolicy(category=FieldPolicy(threshold=1.0), owner=FieldPolicy(threshold=1.0))
    write_manifest(
        bundle.path, list(bundle.labels), bundle.taxonomy, bundle.metadata.model_copy(update={"deferral": review_all})
    )
    settings = Settings(bundle_path=bundle_copy, home=tmp_path, agreement_rate=0.0, qa_sample_rate=0.0)
    with running_server(settings) as base:
        yield base


def test_annotator_accepts_a_suggestion_with_one_key(server: str, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    ingest = httpx.post(
        f"{server}/v1/feedback",
        json={"items": [{"text": "I was charged twice for one order"}, {"text": "the app crashes at checkout"}]},
    )
    assert ingest.status_code == 200
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page()
        page.goto(f"{server}/review")
        page.fill("#annotator", "ann")
        page.press("#annotator", "Tab")  # commits the name (change event) and loads the first task
        page.wait_for_selector(".suggestion")
        first_text = page.inner_text("#text")
        assert first_text in {"I was charged twice for one order", "the app crashes at checkout"}
        assert page.inner_text("#progress") == "0 done · 2 open"
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("1")
        page.wait_for_function("document.getElementById('progress').textContent.startsWith('1 done')")
        assert "Saved task" in page.inner_text("#status")
        assert page.inner_text("#text") != first_text  # the next task is on screen
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        browser.close()
    stats = httpx.get(f"{server}/v1/review/stats").json()
    assert stats["done"] == 1 and stats["open"] == 1
