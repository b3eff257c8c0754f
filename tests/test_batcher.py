"""Micro-batching with a stand-in classifier whose timing the test controls."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.batcher import MicroBatcher, Overloaded
from switchboard.deferral import Routing
from switchboard.schemas import Alternative, ModelInfo, Prediction, ScoredCategory, ScoredOwner
from switchboard.text import CleanText


class SlowEcho:
    """Predicts the text itself as the category; each call blocks until released (or a short delay)."""

    def __init__(self, name: str = "v1", delay: float = 0.02) -> None:
        self.info = ModelInfo(name="echo", version=name, taxonomy_version="t")
        self.delay = delay
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict_cleaned(self, items: list[CleanText]) -> list[Prediction]:
        self.gate.wait(5)
        self.calls.append(len(items))
        threading.Event().wait(self.delay)
        return [
            Prediction(
                category=ScoredCategory(id=c.text, name=c.text, confidence=1.0),
                owner=ScoredOwner(id="o", name="O", confidence=1.0),
                alternatives=[Alternative(category=c.text, owner="o", confidence=1.0)],
                truncated=c.truncated,
                routing=Routing(category="auto", owner="auto", auto_routed=True),
            )
            for c in items
        ]


def _items(*texts: str) -> list[CleanText]:
    return [CleanText(t, False) for t in texts]


async def _with_batcher(clf: SlowEcho, **kwargs: float) -> MicroBatcher:
    batcher = MicroBatcher(clf, **kwargs)  # type: ignore[arg-type]
    await batcher.start()
    return batcher


def test_concurrent_requests_share_batches_and_get_their_own_answers() -> None:
    async def scenario() -> None:
        clf = SlowEcho()
        seen: list[int] = []
        batcher = MicroBatcher(clf, max_wait_ms=5, observer=lambda n, _q: seen.append(n))  # type: ignore[arg-type]
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(_items(f"r{i}a", f"r{i}b")) for i in range(20)))
        for i, (preds, info) in enumerate(results):
            assert [p.category.id for p in preds] == [f"r{i}a", f"r{i}b"]
            assert info.version == "v1"
        assert sum(clf.calls) == 40
        assert max(clf.calls) > 2  # several requests went through one inference call
        assert len(clf.calls) < 20
        assert seen == clf.calls
        await batcher.stop()

    asyncio.run(scenario())


def test_a_lone_request_is_not_held_back() -> None:
    async def scenario() -> None:
        clf = SlowEcho(delay=0)
        batcher = await _with_batcher(clf, max_wait_ms=1000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit(_items("only"))
        assert loop.time() - start < 0.5  # far below the 1 s wait: light load dispatches at once
        await batcher.stop()

    asyncio.run(scenario())


def test_full_queue_refuses_at_once_with_retry_after() -> None:
    async def scenario() -> None:
        clf = SlowEcho()
        clf.gate.clear()  # the worker blocks on its first batch
        batcher = await _with_batcher(clf, max_queue_items=4)
        first = asyncio.create_task(batcher.submit(_items("a")))
        await asyncio.sleep(0.05)  # the worker took "a" and is blocked
        queued = asyncio.create_task(batcher.submit(_items("b", "c", "d")))
        await asyncio.sleep(0)
        assert batcher.queued_items == 3
        with pytest.raises(Overloaded, match=r"queue is full \(3 items waiting, limit 4\)") as info:
            await batcher.submit(_items("e", "f"))
        assert info.value.retry_after_s == 1
        clf.gate.set()
        assert [p.category.id for p in (await queued)[0]] == ["b", "c", "d"]  # nothing accepted was lost
        assert (await first)[0][0].category.id == "a"
        await batcher.stop()

    asyncio.run(scenario())


def test_swap_lets_the_running_batch_finish_on_the_old_model() -> None:
    async def scenario() -> None:
        old, new = SlowEcho("old"), SlowEcho("new")
        old.gate.clear()
        batcher = await _with_batcher(old)
        running = asyncio.create_task(batcher.submit(_items("x")))
        await asyncio.sleep(0.05)
        assert batcher.swap(new) is old  # type: ignore[comparison-overlap]
        old.gate.set()
        assert (await running)[1].version == "old"
        assert (await batcher.submit(_items("y")))[1].version == "new"
        await batcher.stop()

    asyncio.run(scenario())


def test_inference_failure_reaches_every_waiting_request_and_serving_goes_on() -> None:
    class Broken(SlowEcho):
        def predict_cleaned(self, items: list[CleanText]) -> list[Prediction]:
            if any(c.text == "boom" for c in items):
                raise RuntimeError("onnxruntime fell over")
            return super().predict_cleaned(items)

    async def scenario() -> None:
        batcher = await _with_batcher(Broken(delay=0))
        with pytest.raises(RuntimeError, match="fell over"):
            await batcher.submit(_items("boom"))
        assert (await batcher.submit(_items("fine")))[0][0].category.id == "fine"
        await batcher.stop()

    asyncio.run(scenario())
