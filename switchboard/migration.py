"""Taxonomy migrations: the explicit, checked mapping from one taxonomy version to the next.

A migration file names both taxonomy files and lists every change a reader must approve::

    from_taxonomy: taxonomy-2026.yaml      # paths relative to this file
    to_taxonomy: taxonomy-2027.yaml
    operations:
      - {rename: late_delivery, to: delivery_delay}
      - {merge: [rude_driver, rude_support], into: staff_behaviour}
      - {split: damaged_items, into: [damaged_packaging, damaged_product]}
      - {retire: app_crash, into: app_bug}       # without `into`: its items go to the relabel queue
      - {add: substitution}                      # new, needs seed examples
      - {reparent: refunds, parent: payments}    # parent: null for the top level
      - {reassign: delivery_delay, owner: logistics}

Every leaf of the old taxonomy must survive unchanged or be named by a rename, merge, split or retire;
every new leaf must have existed or be the target of one of them or an ``add``; every change of parent or
owner between the files must be declared. Anything else is rejected, with all problems named, before
anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.errors import TaxonomyError, describe_validation
from switchboard.taxonomy import Taxonomy
from switchboard.yamlfile import read_mapping


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Rename(_Op):
    rename: str
    to: str


class Merge(_Op):
    merge: list[str] = Field(min_length=1)
    into: str


class Split(_Op):
    split: str
    into: list[str] = Field(min_length=2)


class Retire(_Op):
    retire: str
    into: str | None = Field(default=None, description="Where its items go; None: to the relabel queue.")


class Add(_Op):
    add: str


class Reparent(_Op):
    reparent: str
    parent: str | None


class Reassign(_Op):
    reassign: str
    owner: str


Operation = Rename | Merge | Split | Retire | Add | Reparent | Reassign


class MigrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_taxonomy: Path
    to_taxonomy: Path
    description: str = ""
    operations: list[Operation] = Field(default_factory=list)


@dataclass(frozen=True)
class TaxonomyDiff:
    """What differs between two taxonomy versions (ids of leaves unless said otherwise)."""

    old_version: str
    new_version: str
    renamed: dict[str, str] = field(default_factory=dict)
    merged: dict[str, list[str]] = field(default_factory=dict)
    split: dict[str, list[str]] = field(default_factory=dict)
    retired: dict[str, str | None] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    reparented: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    owner_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    owners_added: list[str] = field(default_factory=list)
    owners_removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.old_version,
            "to": self.new_version,
            "renamed": self.renamed,
            "merged": self.merged,
            "split": self.split,
            "retired": self.retired,
            "added (need seed examples)": self.added,
            "reparented": {k: {"from": a, "to": b} for k, (a, b) in self.reparented.items()},
            "owner_changes": {k: {"from": a, "to": b} for k, (a, b) in self.owner_changes.items()},
            "owners_added": self.owners_added,
            "owners_removed": self.owners_removed,
            "unchanged_leaves": self.unchanged,
        }


@dataclass(frozen=True)
class TaxonomyMigration:
    """A checked migration. ``mapping`` sends each old leaf that maps automatically to its new leaf;
    ``relabel`` lists, for each old leaf whose items need a human, the new leaves to choose from."""

    old: Taxonomy
    new: Taxonomy
    operations: tuple[Operation, ...]
    mapping: dict[str, str]
    relabel: dict[str, tuple[str, ...]]
    diff: TaxonomyDiff
    description: str = ""

    def map_label(self, old_category: str) -> str | None:
        """The new leaf for an old leaf; None when its items must be relabelled (split, retire without target)."""
        if old_category in self.mapping:
            return self.mapping[old_category]
        if old_category in self.relabel:
            return None
        raise TaxonomyError(f"category '{old_category}' is not a leaf of taxonomy {self.old.version}")

    @property
    def needs_seed_examples(self) -> list[str]:
        """New leaves nothing maps into automatically: added ones and split targets."""
        targets = set(self.mapping.values())
        return [c for c in self.new.leaf_ids if c not in targets]

    @property
    def owner_only(self) -> bool:
        """True when no item changes category (only owners, names or parents moved): no retraining needed."""
        return not self.relabel and all(k == v for k, v in self.mapping.items()) and not self.diff.added

    @classmethod
    def load(cls, path: str | Path) -> TaxonomyMigration:
        path = Path(path)
        raw = read_mapping(path, "migration file", TaxonomyError)
        try:
            spec = MigrationFile.model_validate(raw)
        except ValidationError as exc:
            raise TaxonomyError(f"invalid migration {path}: {describe_validation(exc.errors())}") from exc
        base = path.parent
        old = Taxonomy.load(_rebase(base, spec.from_taxonomy))
        new = Taxonomy.load(_rebase(base, spec.to_taxonomy))
        return build(old, new, spec.operations, spec.description, source=str(path))


def _rebase(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def build(
    old: Taxonomy, new: Taxonomy, operations: list[Operation], description: str = "", source: str = "<migration>"
) -> TaxonomyMigration:
    """Check ``operations`` against both taxonomies; raise one ``TaxonomyError`` naming every problem."""
    problems: list[str] = []
    if old.version == new.version:
        problems.append(f"both taxonomies are version {old.version}: a migration needs a new version")
    old_leaves, new_leaves = set(old.leaf_ids), set(new.leaf_ids)
    mapping: dict[str, str] = {}
    relabel: dict[str, tuple[str, ...]] = {}
    sourced: dict[str, int] = {}
    targets: set[str] = set()
    diff = TaxonomyDiff(old.version, new.version)

    def label(i: int, op: Operation) -> str:
        return f"operation {i + 1} ({type(op).__name__.lower()})"

    def old_leaf(i: int, op: Operation, cat: str) -> bool:
        if cat not in old.category_by_id:
            problems.append(f"{label(i, op)}: unknown category '{cat}' in taxonomy {old.version}")
            return False
        if cat not in old_leaves:
            problems.append(f"{label(i, op)}: '{cat}' is a group in taxonomy {old.version}; name its leaves")
            return False
        if cat in sourced:
            problems.append(f"{label(i, op)}: '{cat}' is already mapped by operation {sourced[cat] + 1}")
            return False
        sourced[cat] = i
        return True

    def new_leaf(i: int, op: Operation, cat: str) -> bool:
        if cat not in new.category_by_id:
            problems.append(f"{label(i, op)}: unknown category '{cat}' in taxonomy {new.version}")
            return False
        if cat not in new_leaves:
            problems.append(f"{label(i, op)}: '{cat}' is a group in taxonomy {new.version}, not a leaf")
            return False
        return True

    def must_go(i: int, op: Operation, cat: str, keep: str | None = None) -> None:
        if cat in new_leaves and cat != keep:
            problems.append(f"{label(i, op)}: '{cat}' is still a leaf of taxonomy {new.version}")

    declared_parent: dict[str, str | None] = {}
    declared_owner: dict[str, str] = {}
    for i, op in enumerate(operations):
        if isinstance(op, Rename):
            ok = old_leaf(i, op, op.rename) & new_leaf(i, op, op.to)
            must_go(i, op, op.rename)
            if op.to in old_leaves and op.to != op.rename:
                problems.append(f"{label(i, op)}: '{op.to}' already exists in {old.version}; use merge")
            if ok:
                mapping[op.rename] = op.to
                diff.renamed[op.rename] = op.to
                targets.add(op.to)
        elif isinstance(op, Merge):
            if new_leaf(i, op, op.into):
                targets.add(op.into)
                for cat in op.merge:
                    if old_leaf(i, op, cat):
                        mapping[cat] = op.into
                        must_go(i, op, cat, keep=op.into)
                diff.merged[op.into] = list(op.merge)
        elif isinstance(op, Split):
            ok = old_leaf(i, op, op.split)
            must_go(i, op, op.split)
            good = [c for c in op.into if new_leaf(i, op, c)]
            if len(set(op.into)) != len(op.into):
                problems.append(f"{label(i, op)}: targets repeat")
            if ok and len(good) == len(op.into):
                relabel[op.split] = tuple(op.into)
                diff.split[op.split] = list(op.into)
                targets.update(op.into)
        elif isinstance(op, Retire):
            ok = old_leaf(i, op, op.retire)
            must_go(i, op, op.retire)
            if op.into is not None and new_leaf(i, op, op.into) and ok:
                mapping[op.retire] = op.into
            elif op.into is None and ok:
                relabel[op.retire] = new.leaf_ids
            diff.retired[op.retire] = op.into
        elif isinstance(op, Add):
            if op.add in old_leaves:
                problems.append(f"{label(i, op)}: '{op.add}' already exists in {old.version}")
            elif new_leaf(i, op, op.add):
                targets.add(op.add)
                diff.added.append(op.add)
        elif isinstance(op, Reparent):
            for ref in (op.reparent, op.parent):
                if ref is not None and ref not in new.category_by_id:
                    problems.append(f"{label(i, op)}: unknown category '{ref}' in taxonomy {new.version}")
            declared_parent[op.reparent] = op.parent
        elif isinstance(op, Reassign):
            if op.reassign not in new.category_by_id:
                problems.append(f"{label(i, op)}: unknown category '{op.reassign}' in taxonomy {new.version}")
            if op.owner not in new.owner_by_id:
                problems.append(f"{label(i, op)}: unknown owner '{op.owner}' in taxonomy {new.version}")
            declared_owner[op.reassign] = op.owner

    # leaves that keep their id map to themselves; every other old leaf must have been named
    for cat in old.leaf_ids:
        if cat in sourced:
            continue
        if cat in new_leaves:
            mapping[cat] = cat
            targets.add(cat)
        else:
            problems.append(
                f"category '{cat}' of taxonomy {old.version} is not a leaf of {new.version} and no operation "
                "maps it (rename, merge, split or retire it)"
            )
    for cat in new.leaf_ids:
        if cat not in targets:
            problems.append(
                f"new category '{cat}' of taxonomy {new.version} has no source: declare it with "
                "{add: ...} (it needs seed examples) or map categories into it"
            )
    cycle = _rename_cycle({k: v for k, v in mapping.items() if k != v and v in old_leaves})
    if cycle:
        problems.append("renames form a cycle: " + " -> ".join(cycle))
    _check_declared(old, new, declared_parent, declared_owner, mapping, diff, problems)
    if problems:
        raise TaxonomyError(f"migration {source} rejected: " + "; ".join(problems))
    diff.owners_added.extend(o for o in new.owner_by_id if o not in old.owner_by_id)
    diff.owners_removed.extend(o for o in old.owner_by_id if o not in new.owner_by_id)
    unchanged = sum(1 for k, v in mapping.items() if k == v and k not in diff.owner_changes)
    diff = TaxonomyDiff(**{**diff.__dict__, "unchanged": unchanged})
    return TaxonomyMigration(old, new, tuple(operations), mapping, relabel, diff, description)


def _check_declared(
    old: Taxonomy,
    new: Taxonomy,
    declared_parent: dict[str, str | None],
    declared_owner: dict[str, str],
    mapping: dict[str, str],
    diff: TaxonomyDiff,
    problems: list[str],
) -> None:
    """Every parent and owner change between the files is declared, and every declaration is true."""
    for cat in new.categories:
        before = old.category_by_id.get(cat.id)
        moved = before is not None and before.parent != cat.parent
        if moved:
            assert before is not None
            diff.reparented[cat.id] = (before.parent, cat.parent)
            if cat.id not in declared_parent:
                problems.append(
                    f"category '{cat.id}' moves from parent {before.parent!r} to {cat.parent!r} but the "
                    f"migration does not declare it (add {{reparent: {cat.id}, parent: {cat.parent}}})"
                )
    for cid, parent in declared_parent.items():
        if cid in new.category_by_id and new.category_by_id[cid].parent != parent:
            problems.append(
                f"reparent declares '{cid}' under {parent!r} but taxonomy {new.version} puts it under "
                f"{new.category_by_id[cid].parent!r}"
            )
    for source, target in mapping.items():
        if source == target or diff.renamed.get(source) == target:
            before_owner, after_owner = old.leaf_owner[source], new.leaf_owner[target]
            if before_owner != after_owner:
                diff.owner_changes[target] = (before_owner, after_owner)
                if target not in declared_owner:
                    problems.append(
                        f"category '{target}' moves from owner '{before_owner}' to '{after_owner}' but the "
                        f"migration does not declare it (add {{reassign: {target}, owner: {after_owner}}})"
                    )
    for cid, owner in declared_owner.items():
        if cid in new.leaf_owner and new.leaf_owner[cid] != owner:
            problems.append(
                f"reassign declares '{cid}' → '{owner}' but taxonomy {new.version} routes it to '{new.leaf_owner[cid]}'"
            )


def _rename_cycle(edges: dict[str, str]) -> list[str] | None:
    for start in edges:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in edges:
            if node in path:
                return [*path[path.index(node) :], node]
            path.append(node)
            node = edges.get(node)
    return None
