"""zstd compression inside sealed blobs, with every decompression bounded.

A payload that passed authentication can still come from a buggy writer, so decompression never trusts
a declared size: one-shot payloads must declare a content size no larger than the caller's limit, and
streamed payloads are fed to the decoder in small pieces so one call cannot expand without bound.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from typing import Final

import zstandard

from ctfy_vault.exceptions import FormatError

DEFAULT_LEVEL: Final = 3
# A zstd block holds at most 128 KiB and the smallest block is a few bytes, so feeding 1 KiB of input
# per call caps one call's output at a few tens of MiB, however the frame was built.
_FEED: Final = 1024
_SAMPLE: Final = 16 * 1024
_MIN_SAVING: Final = 0.97


# A zstd context costs about as much to create as compressing 40 KiB; one per thread and level is
# kept because a context must not be used by two threads at once.
_contexts = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_contexts, "by_level", None)
    if cache is None:
        cache = _contexts.by_level = {}
    context = cache.get(level)
    if context is None:
        context = cache[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=False, write_content_size=True, write_dict_id=False
        )
    return context


def compress(data: bytes | memoryview, level: int) -> bytes | None:
    """Compress ``data`` into one zstd frame that declares its content size.

    Large inputs are sampled first (three 16 KiB pieces); if the samples do not shrink by at least
    3%, the input is stored as is without a full compression pass.

    Args:
        data: the plaintext.
        level: the zstd level.

    Returns:
        The frame, or ``None`` when it would not be smaller than ``data`` (stored as is).
    """
    view = memoryview(data)
    if len(view) >= 8 * _SAMPLE:
        # Already-compressed or encrypted input (archives, images) would cost a full zstd pass
        # for nothing; three small samples decide first, at about 2% of the cost.
        step = len(view) // 3
        sample = b"".join(view[i * step : i * step + _SAMPLE] for i in range(3))
        if len(_compressor(level).compress(sample)) > len(sample) * _MIN_SAVING:
            return None
    frame = _compressor(level).compress(data)
    return frame if len(frame) < len(data) else None


def compress_stream(pieces: Iterable[bytes], level: int) -> memoryview:
    """Compress an iterable of byte strings into one zstd frame without joining the plaintext.

    Args:
        pieces: the plaintext, in order.
        level: the zstd level.

    Returns:
        A view of the frame (the only full-size buffer this allocates).
    """
    sink = io.BytesIO()
    # A fresh context: the pieces iterator may itself compress on this thread meanwhile.
    context = zstandard.ZstdCompressor(
        level=level, write_checksum=False, write_content_size=True, write_dict_id=False
    )
    writer = context.stream_writer(sink, closefd=False)
    for piece in pieces:
        writer.write(piece)
    writer.flush(zstandard.FLUSH_FRAME)
    return sink.getbuffer()


def decompress(frame: bytes, max_size: int) -> bytes:
    """Decompress one zstd frame that declares a content size of at most ``max_size`` bytes.

    Args:
        frame: exactly one zstd frame.
        max_size: the largest plaintext the caller accepts.

    Returns:
        The plaintext.

    Raises:
        FormatError: not one well-formed frame, no declared size, or a size above ``max_size``.
    """
    try:
        declared = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError:
        raise FormatError("compressed payload is not a zstd frame") from None
    if declared == zstandard.CONTENTSIZE_UNKNOWN:
        raise FormatError("compressed payload does not declare its size")
    if declared > max_size:
        raise FormatError(f"compressed payload declares {declared} bytes; the limit is {max_size}")
    decoder = zstandard.ZstdDecompressor().decompressobj()
    try:
        # zstd itself refuses output beyond the declared content size, so this call is bounded.
        data = decoder.decompress(frame)
    except zstandard.ZstdError:
        raise FormatError("compressed payload is damaged") from None
    if not decoder.eof or decoder.unused_data or len(data) != declared:
        raise FormatError("compressed payload does not hold exactly one complete frame")
    return data


def decompress_stream(frame: bytes) -> Iterator[bytes]:
    """Yield the plaintext of one zstd frame in bounded pieces.

    Args:
        frame: exactly one zstd frame, with or without a declared size.

    Yields:
        Plaintext pieces; no single piece exceeds a few tens of MiB.

    Raises:
        FormatError: the frame is damaged, incomplete, or followed by other bytes.
    """
    decoder = zstandard.ZstdDecompressor().decompressobj()
    view = memoryview(frame)
    fed = 0
    try:
        while fed < len(view) and not decoder.eof:
            out = decoder.decompress(view[fed : fed + _FEED])
            fed = min(fed + _FEED, len(view))
            if out:
                yield out
    except zstandard.ZstdError:
        raise FormatError("compressed payload is damaged") from None
    if not decoder.eof or decoder.unused_data or fed < len(view):
        raise FormatError("compressed payload does not hold exactly one complete frame")
