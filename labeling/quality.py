"""Label quality: likely label errors by confident learning (cleanlab), queued for re-review.

cleanlab wants out-of-sample probabilities; the model's probabilities on items it was trained on are
over-confident, so its findings are a lower bound there. Stored corrections the model has not been
trained on yet give proper out-of-sample probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labeling.queue import accepted_labels, queue_existing
from models.classifier import Classifier
from switchboard.storage import Database

LABEL_ISSUE_PRIORITY = 1.5  # above most uncertainty scores: a wrong label poisons the next model


@dataclass(frozen=True)
class LabelIssue:
    index: int
    text: str
    given: str
    suggested: str
    self_confidence: float


def find_label_issues(classifier: Classifier, texts: list[str], labels: list[str]) -> list[LabelIssue]:
    """Items whose given label the model finds unlikely, worst first (cleanlab's self-confidence ranking)."""
    from cleanlab.filter import find_label_issues as cl_find

    index = {lab: i for i, lab in enumerate(classifier.labels)}
    keep = [i for i, lab in enumerate(labels) if lab in index]
    if len(keep) < 2:
        return []
    probs = classifier.score_clean([texts[i] for i in keep]).probabilities.astype(np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    given = np.array([index[labels[i]] for i in keep], dtype=np.int64)
    ranked = cl_find(labels=given, pred_probs=probs, return_indices_ranked_by="self_confidence")
    return [
        LabelIssue(
            index=keep[int(j)],
            text=texts[keep[int(j)]],
            given=labels[keep[int(j)]],
            suggested=classifier.labels[int(probs[j].argmax())],
            self_confidence=float(probs[j, given[j]]),
        )
        for j in ranked
    ]


def queue_label_issues(db: Database, classifier: Classifier) -> tuple[list[LabelIssue], list[int]]:
    """Scan the stored labels of the taxonomy in force and queue likely errors for another look."""
    taxonomy = classifier.bundle.taxonomy
    rows = accepted_labels(db, taxonomy)
    issues = find_label_issues(classifier, [t for _, t, _ in rows], [c for _, _, c in rows])
    task_ids = queue_existing(
        db, [rows[i.index][0] for i in issues], "label_issue", taxonomy.version, priority=LABEL_ISSUE_PRIORITY
    )
    return issues, task_ids
