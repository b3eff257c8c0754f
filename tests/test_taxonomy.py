from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from switchboard.errors import TaxonomyError
from switchboard.taxonomy import Taxonomy
from tests.conftest import DEMO_TAXONOMY


def _base() -> dict:  # type: ignore[type-arg]
    return {
        "version": "t1",
        "owners": [{"id": "pay", "name": "Payments"}, {"id": "ops", "name": "Operations"}],
        "categories": [
            {"id": "billing", "name": "Billing"},
            {"id": "refund", "name": "Refund", "parent": "billing"},
            {"id": "late", "name": "Late"},
        ],
        "owner_map": {"billing": "pay", "late": "ops"},
    }


def test_demo_taxonomy_loads_with_leaves_and_inherited_owners(demo_taxonomy: Taxonomy) -> None:
    assert demo_taxonomy.version == "demo-2026.1"
    assert len(demo_taxonomy.leaf_ids) == 11
    assert "delivery" not in demo_taxonomy.leaf_ids  # a group, not a predicted class
    assert demo_taxonomy.owner_of("double_charge") == "payments"  # inherited from its parent "billing"
    assert set(demo_taxonomy.leaf_owner.values()) == {o.id for o in demo_taxonomy.owners}


def test_specific_mapping_overrides_the_parent() -> None:
    data = _base()
    data["owner_map"]["refund"] = "ops"
    tax = Taxonomy.from_dict(data)
    assert tax.owner_of("refund") == "ops"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["owner_map"].update(late="nobody"), "unknown owner 'nobody'"),
        (lambda d: d["categories"].append({"id": "late", "name": "Again"}), r"duplicate category id\(s\): late"),
        (lambda d: d["owners"].append({"id": "pay", "name": "Again"}), r"duplicate owner id\(s\): pay"),
        (lambda d: d["categories"].append({"id": "x", "name": "X", "parent": "ghost"}), "unknown parent 'ghost'"),
        (lambda d: d["owner_map"].update(ghost="pay"), "unknown category 'ghost'"),
        (lambda d: d["categories"].append({"id": "orphan", "name": "O"}), "without an owner"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["categories"][0].update(id="Bad Id"), "categories.0.id"),
    ],
)
def test_invalid_taxonomies_are_rejected_with_the_reason(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _base()
    mutate(data)
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy.from_dict(data)


def test_parent_cycle_is_rejected_and_named() -> None:
    data = _base()
    data["categories"] = [
        {"id": "a", "name": "A", "parent": "c"},
        {"id": "b", "name": "B", "parent": "a"},
        {"id": "c", "name": "C", "parent": "b"},
        {"id": "late", "name": "Late"},
    ]
    data["owner_map"] = {"a": "pay", "late": "ops"}
    with pytest.raises(TaxonomyError, match=r"cycle: a -> c -> b -> a|cycle: .* -> .*"):
        Taxonomy.from_dict(data)


def test_yaml_round_trip(tmp_path: Path, demo_taxonomy: Taxonomy) -> None:
    demo_taxonomy.write(tmp_path / "t.yaml")
    assert Taxonomy.load(tmp_path / "t.yaml") == demo_taxonomy


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="not found"):
        Taxonomy.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        Taxonomy.load(bad)
    bad.write_text(yaml.safe_dump(["a", "list"]), encoding="utf-8")
    with pytest.raises(TaxonomyError, match="must hold a mapping"):
        Taxonomy.load(bad)


def test_owner_of_unknown_category() -> None:
    with pytest.raises(TaxonomyError, match="unknown category 'nope'"):
        Taxonomy.from_dict(_base()).owner_of("nope")


def test_flat_taxonomy_from_a_routing_map() -> None:
    tax = Taxonomy.flat("b77", {"card_arrival": "cards", "top_up_failed": "top_up", "card_linking": "cards"})
    assert tax.leaf_ids == ("card_arrival", "top_up_failed", "card_linking")
    assert [o.id for o in tax.owners] == ["cards", "top_up"]
    assert tax.category_by_id["card_arrival"].name == "Card arrival"


def test_demo_file_is_the_committed_one() -> None:
    assert DEMO_TAXONOMY.is_file()
