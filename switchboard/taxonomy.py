"""The actionable taxonomy: categories, owner teams and the category→owner routing map.

A taxonomy is a versioned YAML file::

    version: "2026.1"
    name: Acme feedback taxonomy
    owners:
      - {id: payments, name: Billing & payments}
    categories:
      - {id: billing, name: Billing}                       # a group (has children)
      - {id: double_charge, name: Charged twice, parent: billing,
         description: The customer was charged more than once.}
    owner_map:
      billing: payments        # inherited by every category under "billing"

Leaf categories are what the model predicts. Each leaf is routed to the owner mapped to it or,
failing that, to its nearest mapped ancestor; a leaf without any owner is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard.errors import TaxonomyError, describe_validation
from switchboard.yamlfile import read_mapping

_ID = r"^\S+$"  # any id without whitespace: real taxonomies have ids like "Refund_not_showing_up"


class Owner(BaseModel):
    """An operating area (team) accountable for reducing, eliminating or justifying feedback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, max_length=64)
    name: str = Field(min_length=1)
    description: str = ""


class Category(BaseModel):
    """One node of the taxonomy tree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, max_length=128)
    name: str = Field(min_length=1)
    description: str = ""
    parent: str | None = None
    sentiment: Literal["positive", "negative", "neutral"] | None = Field(
        default=None, description="The sentiment feedback in this category carries (inherited by children)."
    )


class Taxonomy(BaseModel):
    """A validated, versioned taxonomy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    name: str = "Switchboard taxonomy"
    owners: tuple[Owner, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = Field(min_length=1)
    owner_map: dict[str, str]

    @model_validator(mode="after")
    def _check_consistency(self) -> Taxonomy:
        problems: list[str] = []
        owner_ids = [o.id for o in self.owners]
        cat_ids = [c.id for c in self.categories]
        for kind, ids in (("owner", owner_ids), ("category", cat_ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                problems.append(f"duplicate {kind} id(s): {', '.join(dupes)}")
        known_cats, known_owners = set(cat_ids), set(owner_ids)
        for c in self.categories:
            if c.parent is not None and c.parent not in known_cats:
                problems.append(f"category '{c.id}' has unknown parent '{c.parent}'")
        for cat, owner in self.owner_map.items():
            if cat not in known_cats:
                problems.append(f"owner_map names unknown category '{cat}'")
            if owner not in known_owners:
                problems.append(f"owner_map routes '{cat}' to unknown owner '{owner}'")
        if problems:
            raise ValueError("; ".join(problems))
        cycle = _find_cycle({c.id: c.parent for c in self.categories})
        if cycle:
            raise ValueError(f"category parents form a cycle: {' -> '.join(cycle)}")
        unrouted = [c for c in self.leaf_ids if self._resolve_owner(c) is None]
        if unrouted:
            raise ValueError(
                "leaf categories without an owner (map them or an ancestor in owner_map): " + ", ".join(unrouted)
            )
        return self

    # -- lookups -------------------------------------------------------------------------------

    @cached_property
    def category_by_id(self) -> dict[str, Category]:
        return {c.id: c for c in self.categories}

    @cached_property
    def owner_by_id(self) -> dict[str, Owner]:
        return {o.id: o for o in self.owners}

    @cached_property
    def leaf_ids(self) -> tuple[str, ...]:
        """Leaf categories (those no other category names as parent), in file order."""
        parents = {c.parent for c in self.categories if c.parent is not None}
        return tuple(c.id for c in self.categories if c.id not in parents)

    @cached_property
    def leaf_owner(self) -> dict[str, str]:
        """The resolved owner of every leaf category."""
        resolved = {leaf: self._resolve_owner(leaf) for leaf in self.leaf_ids}
        return {leaf: owner for leaf, owner in resolved.items() if owner is not None}

    def owner_of(self, category_id: str) -> str:
        """The owner a category routes to; raises ``TaxonomyError`` for an unknown category."""
        if category_id not in self.category_by_id:
            raise TaxonomyError(f"unknown category '{category_id}' in taxonomy {self.version}")
        owner = self._resolve_owner(category_id)
        if owner is None:
            raise TaxonomyError(f"category '{category_id}' has no owner in taxonomy {self.version}")
        return owner

    def sentiment_of(self, category_id: str) -> str | None:
        """The sentiment of a category or of its nearest ancestor that has one (None: not set)."""
        node: str | None = category_id
        seen: set[str] = set()
        while node is not None and node not in seen and node in self.category_by_id:
            seen.add(node)
            if self.category_by_id[node].sentiment is not None:
                return self.category_by_id[node].sentiment
            node = self.category_by_id[node].parent
        return None

    def _resolve_owner(self, category_id: str) -> str | None:
        node: str | None = category_id
        seen: set[str] = set()
        while node is not None and node not in seen:
            seen.add(node)
            if node in self.owner_map:
                return self.owner_map[node]
            node = self.category_by_id[node].parent if node in self.category_by_id else None
        return None

    # -- (de)serialisation ---------------------------------------------------------------------

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False)

    @classmethod
    def from_yaml(cls, document: str, source: str = "<yaml>") -> Taxonomy:
        """The inverse of ``to_yaml``."""
        data = yaml.safe_load(document)
        if not isinstance(data, dict):
            raise TaxonomyError(f"taxonomy {source} must hold a mapping, got {type(data).__name__}")
        return cls.from_dict(data, source=source)

    def write(self, path: Path) -> None:
        path.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Taxonomy:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise TaxonomyError(f"invalid taxonomy {source}: {describe_validation(exc.errors())}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        """Load and validate a taxonomy YAML file."""
        path = Path(path)
        return cls.from_dict(read_mapping(path, "taxonomy file", TaxonomyError), source=str(path))

    @classmethod
    def flat(
        cls,
        version: str,
        category_owner: Mapping[str, str],
        owners: Iterable[str] | None = None,
        name: str = "Switchboard taxonomy",
    ) -> Taxonomy:
        """Build a one-level taxonomy from a category→owner map (e.g. a benchmark's owners.csv)."""
        owner_ids = list(dict.fromkeys(owners if owners is not None else category_owner.values()))
        return cls.from_dict(
            {
                "version": version,
                "name": name,
                "owners": [{"id": o, "name": _title(o)} for o in owner_ids],
                "categories": [{"id": c, "name": _title(c)} for c in category_owner],
                "owner_map": dict(category_owner),
            },
            source=f"'{name}'",
        )


def _title(identifier: str) -> str:
    return re.sub(r"[_.-]+", " ", identifier).strip().capitalize()


def _find_cycle(parents: Mapping[str, str | None]) -> list[str] | None:
    for start in parents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parents:
            if node in path:
                return [*path[path.index(node) :], node]
            path.append(node)
            node = parents[node]
    return None
