"""The per-lineage hash chain: every entry names its predecessor's hash; `verify_chain` checks it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs

from ctfy_vault.manifest._codec import OpenedEntry, entry_hash
from ctfy_vault.manifest._model import Entry, PruneRecord


@attrs.frozen
class Gap:
    """An entry names a predecessor that is missing and that no prune record forgot.

    Attributes:
        lineage: the lineage.
        missing: the hash that is named but not present.
        referenced_by: the name of the entry that names it.
    """

    lineage: str
    missing: bytes
    referenced_by: str


@attrs.frozen
class Fork:
    """Several entries name the same predecessor (or several claim to be the first).

    Attributes:
        lineage: the lineage.
        previous: the shared predecessor's hash, ``None`` for several first entries.
        entries: the names of the entries that share it, sorted.
    """

    lineage: str
    previous: bytes | None
    entries: tuple[str, ...]


@attrs.frozen
class Rollback:
    """The lineage is older than it should be: a known head vanished, or time runs backwards.

    Attributes:
        lineage: the lineage.
        expected: the hash that should be present (a known head, or the out-of-order entry's).
        reason: what was seen, in words.
    """

    lineage: str
    expected: bytes
    reason: str


@attrs.frozen
class ChainReport:
    """What `verify_chain` found.

    Attributes:
        gaps: missing predecessors no prune record explains.
        forks: predecessors named more than once.
        rollbacks: known heads that vanished, or entries older than their predecessors.
        heads: for each lineage, the hashes no entry names as predecessor (one when healthy),
            as ``(lineage, hash)`` pairs sorted by lineage then hash.
    """

    gaps: tuple[Gap, ...]
    forks: tuple[Fork, ...]
    rollbacks: tuple[Rollback, ...]
    heads: tuple[tuple[str, bytes], ...]

    @property
    def ok(self) -> bool:
        """Whether the chain has no gap, fork or rollback."""
        return not (self.gaps or self.forks or self.rollbacks)


@attrs.frozen
class _Node:
    name: str
    hash: bytes
    entry: Entry


def _node(item: OpenedEntry | Entry) -> _Node:
    if isinstance(item, OpenedEntry):
        return _Node(item.name, item.hash, item.entry)
    return _Node(item.name, entry_hash(item), item)


def verify_chain(
    entries: Iterable[OpenedEntry | Entry], *, known_heads: Mapping[str, bytes] | None = None
) -> ChainReport:
    """Check every lineage's hash chain: gaps not explained by a prune record, forks and rollbacks.

    A deleted snapshot leaves a gap (its successor names a hash nobody has) unless a prune record of
    the same lineage lists that hash. Deleting the newest entries leaves no gap, so the chain alone
    cannot see it: pass the heads recorded earlier (say, by the last ``verify`` or another target) as
    ``known_heads`` to catch that rollback (see `check_known_heads`).

    Args:
        entries: the opened entries (their stored hashes are used) or models (hashed here), of any
            lineages, in any order.
        known_heads: for some lineages, a hash that must still be present or forgotten by a prune,
            and from which the lineage's head must descend.

    Returns:
        The report; ``report.ok`` when nothing is wrong.
    """
    lineages = _by_lineage(entries)
    gaps: list[Gap] = []
    forks: list[Fork] = []
    rollbacks: list[Rollback] = []
    heads: list[tuple[str, bytes]] = []
    for lineage in sorted(set(lineages) | set(known_heads or {})):
        nodes = lineages.get(lineage, {})
        forgotten = _forgotten(nodes)
        children: dict[bytes | None, list[_Node]] = defaultdict(list)
        for node in nodes.values():
            children[node.entry.previous].append(node)
        for previous, named_by in sorted(children.items(), key=lambda kv: kv[0] or b""):
            if len(named_by) > 1:
                forks.append(Fork(lineage, previous, tuple(sorted(n.name for n in named_by))))
            if previous is None:
                continue
            before = nodes.get(previous)
            for node in sorted(named_by, key=lambda n: n.name):
                if before is None and previous not in forgotten:
                    gaps.append(Gap(lineage, previous, node.name))
                elif before is not None and node.entry.created < before.entry.created:
                    rollbacks.append(
                        Rollback(lineage, node.hash, f"{node.name} is older than its predecessor")
                    )
        heads.extend((lineage, h) for h in sorted(set(nodes) - set(children)))
        known = (known_heads or {}).get(lineage)
        if known is not None:
            rollbacks.extend(_known_head(lineage, nodes, forgotten, known))
    return ChainReport(tuple(gaps), tuple(forks), tuple(rollbacks), tuple(heads))


def check_known_heads(
    entries: Iterable[OpenedEntry | Entry], known_heads: Mapping[str, bytes]
) -> tuple[Rollback, ...]:
    """Check only that each known head is still accounted for (the rollbacks `verify_chain` adds).

    A known head ``K`` of a lineage is accounted for when the lineage still has entries, ``K`` is
    present or a prune record of the lineage forgot it, and the lineage's head (its newest entry
    that no other names, which a backup chains onto) descends from ``K``: following ``previous``
    from the head reaches ``K``, or stops at an entry that is no longer there (forgotten by a
    prune, or a gap `verify_chain` reports), never at the lineage's first entry without passing
    ``K``. Several heads (a fork) are reported by `verify_chain` as a fork.

    Args:
        entries: the opened entries or models, of any lineages, in any order.
        known_heads: for some lineages, the head hash seen earlier.

    Returns:
        At most one `Rollback` per lineage, by lineage: the lineage vanished, the known head is
        missing and no prune record forgot it, or the head does not descend from it.
    """
    lineages = _by_lineage(entries)
    found: list[Rollback] = []
    for lineage, known in sorted(known_heads.items()):
        nodes = lineages.get(lineage, {})
        found.extend(_known_head(lineage, nodes, _forgotten(nodes), known))
    return tuple(found)


def _by_lineage(entries: Iterable[OpenedEntry | Entry]) -> dict[str, dict[bytes, _Node]]:
    lineages: dict[str, dict[bytes, _Node]] = defaultdict(dict)
    for item in entries:
        node = _node(item)
        lineages[node.entry.lineage].setdefault(node.hash, node)
    return lineages


def _forgotten(nodes: Mapping[bytes, _Node]) -> set[bytes]:
    return {
        item.hash
        for node in nodes.values()
        if isinstance(node.entry, PruneRecord)
        for item in node.entry.forgotten
    }


def _known_head(
    lineage: str, nodes: Mapping[bytes, _Node], forgotten: set[bytes], known: bytes
) -> list[Rollback]:
    """The rollbacks one known head reveals (see `check_known_heads`)."""
    if not nodes:
        return [Rollback(lineage, known, "the lineage has vanished: no entry of it is left")]
    if known not in nodes and known not in forgotten:
        return [Rollback(lineage, known, "a known head is missing")]
    # The head is the newest entry nobody names (what a backup chains onto). Older unnamed
    # entries are not heads: the end of a run before a pruned or deleted entry looks the same.
    named = {node.entry.previous for node in nodes.values()}
    tips = [node for node in nodes.values() if node.hash not in named] or list(nodes.values())
    head = max(tips, key=lambda n: (n.entry.created, n.name))
    if _descends(head, known, nodes):
        return []
    return [Rollback(lineage, known, f"head {head.name} does not descend from the known head")]


def _descends(node: _Node, known: bytes, nodes: Mapping[bytes, _Node]) -> bool:
    """Whether ``known`` is ``node`` or an ancestor, as far as the entries present can tell.

    A walk that reaches an entry no longer present cannot tell (a prune forgot it, or the gap is
    reported on its own), so it counts as descending; only reaching the lineage's first entry
    without meeting ``known`` proves the head is on another branch.
    """
    seen: set[bytes] = set()
    current: _Node | None = node
    while current is not None and current.hash not in seen:
        if current.hash == known:
            return True
        seen.add(current.hash)
        previous = current.entry.previous
        if previous is None:
            return False
        if previous == known:
            return True
        current = nodes.get(previous)
    return current is None  # stopped at a missing entry: cannot tell (a cycle is a forgery)


def lineage_head(entries: Iterable[OpenedEntry], lineage: str) -> OpenedEntry | None:
    """The lineage's head: the newest entry no other entry names as its predecessor.

    Preferring an unnamed entry keeps the chain linear when two entries share a creation time (a
    retried backup with the same ``now``): the one already followed is never picked again.
    """
    mine = [o for o in entries if o.entry.lineage == lineage]
    if not mine:
        return None
    named = {o.entry.previous for o in mine}
    tips = [o for o in mine if o.hash not in named] or mine
    return max(tips, key=lambda o: (o.entry.created, o.name))
