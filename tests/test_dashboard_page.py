"""The accountability dashboard in a real browser (Debian's headless Chromium via Playwright).

Set SWITCHBOARD_SCREENSHOT_DIR to keep the screenshot (``dashboard.png``) for a human to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from switchboard.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, running_server

pytestmark = pytest.mark.browser

TEXTS = [
    "my order arrived two hours after the slot",
    "the delivery was late again",
    "driver threw the bags on the doorstep",
    "I was charged twice for one order",
    "still waiting for my refund",
    "the app crashes at checkout",
    "cannot log in since the update",
    "eggs were smashed",
    "they replaced oat milk with cow milk",
    "waited an hour on the support chat",
]


@pytest.fixture
def server(bundle_path: Path, tmp_path: Path) -> Iterator[str]:
    settings = Settings(bundle_path=bundle_path, home=tmp_path, outbox_interval_s=0, alert_scan_interval_s=0)
    with running_server(settings) as base:
        yield base


def test_dashboard_renders_charts_and_owner_tables(server: str, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    assert httpx.post(f"{server}/v1/feedback", json={"items": [{"text": t} for t in TEXTS * 2]}).status_code == 200
    cases = httpx.get(f"{server}/v1/cases", params={"limit": 4}).json()["cases"]
    for case, (status, note) in zip(
        cases,
        [("resolved", "refunded and apologised"), ("justified", "slot moved by the customer"), ("in_progress", None)],
        strict=False,
    ):
        body = {"status": status, "actor": "lead", "note": note, "loop_closed": status == "resolved"}
        assert httpx.post(f"{server}/v1/cases/{case['id']}/transition", json=body).status_code == 200
    month = f"{datetime.now(UTC):%Y-%m}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server}/dashboard?month={month}")
        assert page.inner_text("h1").startswith(f"Accountability report · {month} · leadership")
        assert page.locator("svg.chart").count() >= 2 * 6  # leadership trend + top issues, and two per owner
        assert page.locator("svg.chart polyline").count() >= 1
        assert page.locator("svg.chart rect").count() >= 1
        box = page.locator("svg.chart").first.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100  # really laid out, not collapsed
        owners_table = page.locator("table").first.inner_text()
        assert "Billing & payments" in owners_table and "Delivery operations" in owners_table
        assert "refunded and apologised" in page.content() or "slot moved by the customer" in page.content()
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        page.click("text=Billing & payments")
        page.wait_for_url("**owner=payments**")
        assert "· payments" in page.inner_text("h1")
        browser.close()
    assert shot.stat().st_size > 20_000  # a real rendering, not a blank page
    keep = os.environ.get("SWITCHBOARD_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "dashboard.png")
