"""Changing a snapshot's tags without rewriting history: tag records in the lineage's chain.

A manifest is never rewritten (its hash is what the next entry of the chain names, and an
object under Object Lock cannot change anyway), so ``tag`` appends a `TagRecord`: sealed and
authenticated like every chain entry, written create-only to every target, copied by heal, and
part of the chain, so deleting one leaves a gap that ``verify`` reports. A sidecar object next
to the manifest would have had none of that. A snapshot's tags are its manifest's, then every
tag record naming it, applied in time order (`effective_tags`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ctfy_vault.manifest import Manifest, OpenedEntry, TagRecord

__all__ = ["effective_tags"]


def effective_tags(catalog: Iterable[OpenedEntry]) -> dict[bytes, tuple[str, ...]]:
    """Each manifest's tags after every tag record naming it, by the manifest's entry hash."""
    entries = list(catalog)
    tags = {
        opened.hash: opened.entry.tags for opened in entries if isinstance(opened.entry, Manifest)
    }
    records = sorted(
        (opened.entry for opened in entries if isinstance(opened.entry, TagRecord)),
        key=lambda record: (record.created, record.name),
    )
    for record in records:
        current = tags.get(record.snapshot.hash)
        if current is not None:
            tags[record.snapshot.hash] = record.apply(current)
    return tags
