"""Read input files on a background thread while the command starts.

``scaloquant quantify`` spends its first seconds importing torch and loading the model (one
core, the GIL held), then reads its inputs: a gzip NIfTI-MRS file of an MRSI slice is
decompressed on one core too (4096 spectra, 134 MB: 1.5 s of zlib). zlib and hashlib release
the GIL while they work, so :func:`read_ahead` reads, hashes and decompresses the files on a
thread started before the imports, and the reader (:func:`scaloquant.io.nifti.read_nifti_mrs`)
and the provenance (:func:`scaloquant.report.outputs.file_sha256`) take the results with
:func:`content` and :func:`sha256`; only the bytes move between the threads (no parsing, no
imports, no warnings filters on the thread: they are not thread-safe). Standard library only
(and the optional ``isal``, which :func:`gunzip` prefers): the thread must start before numpy
loads.

A file that changed after it was read ahead (size or modification time), or whose reading
failed, is read again the ordinary way, so its errors and messages are the reader's own.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:  # optional (``pip install scaloquant[fast-read]``): ISA-L's inflate, the same bytes
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None


def _key(path: str | os.PathLike) -> tuple[str, int, int] | None:
    """The file's real path, size and modification time (None if it cannot be read)."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return real, st.st_size, st.st_mtime_ns


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    content: bytes | None = None
    sha256: str | None = None


#: Files are read ahead, in order, while their sizes on disk sum to at most this many bytes; the
#: rest are read the ordinary way when their turn comes. Each file read ahead is held (gunzipped:
#: several times its size on disk) until its reader takes it, so without a bound a command given
#: many large files would hold them all at once. The first file is read ahead whatever its size:
#: its reader takes it first and holds the same bytes the moment the imports are done, and read
#: the ordinary way it was read twice, once by its reader and once for its hash on the main
#: thread at the end (a 16384-spectrum ``.nii``, 537 MB: 0.34 s; docs/history/physics-models-log.md
#: "quantify's CPU work around the network (session 19, `qspeed19`)").
READ_AHEAD_MAX_BYTES = 512 * 2**20

_ENTRIES: dict[tuple[str, int, int], _Entry] = {}
_LOCK = threading.Lock()


def gunzip_if_gz(path: str, raw: bytes) -> bytes:
    """The content of a ``.gz`` file (every gzip member, CRC checked), other files as read."""
    return gunzip(raw) if path.lower().endswith(".gz") else raw


def gunzip(raw: bytes) -> bytes:
    """:func:`gzip.decompress` (every member, each CRC- and length-checked, zero padding
    between members skipped) without its extra passes: zlib parses each gzip header and checks
    the CRC as it inflates (``wbits=31``), the input is not copied (a memoryview) and a
    one-member file's content is returned as inflated, not joined into a new copy. 4096 spectra
    of 2048 points (a 130 MB file): 1.51 -> 1.39 s of CPU; 16384: one pass over 0.5 GB each
    of CRC, input copy and output copy fewer.

    With the optional ``isal`` package (python-isal, ``scaloquant[fast-read]``) ISA-L inflates
    instead, with the same checks and the same bytes: the 130 MB file in 0.67-0.81 s of CPU
    against zlib's 1.22-1.35 (docs/physics-models.md, session 14). A file that ISA-L cannot
    inflate is inflated again by zlib, so that its errors are zlib's.

    Raises ``zlib.error`` (not gzip, or corrupt: a bad CRC included) or :class:`EOFError`
    (truncated), as :func:`gzip.decompress` raises ``BadGzipFile``/``EOFError``."""
    if _isal_zlib is not None:
        try:
            return _inflated_members(raw, _isal_zlib.decompressobj)
        except (_isal_zlib.error, EOFError):
            pass  # zlib's pass below says what is wrong, in its own words
    return _inflated_members(raw, zlib.decompressobj)


def _inflated_members(raw: bytes, decompressobj: Callable[..., Any]) -> bytes:
    """:func:`gunzip` with the inflater ``decompressobj`` (zlib's or ISA-L's)."""
    members = []
    rest = memoryview(raw)
    while rest:
        inflate = decompressobj(wbits=16 + zlib.MAX_WBITS)
        members.append(inflate.decompress(rest))
        if not inflate.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        rest = memoryview(inflate.unused_data.lstrip(b"\x00"))
    return members[0] if len(members) == 1 else b"".join(members)


def _hash_beside(raw: bytes, entry: _Entry) -> threading.Thread:
    """Start hashing ``raw`` into ``entry.sha256`` on a thread of its own: hashlib releases the
    GIL, so the hash (0.5 s for a 0.5 GB file) runs beside the decompression, not before it."""

    def work() -> None:
        entry.sha256 = hashlib.sha256(raw).hexdigest()

    thread = threading.Thread(target=work, name="scaloquant-read-ahead-sha256", daemon=True)
    thread.start()
    return thread


def _work(items: list[tuple[str, _Entry]], decode: Callable[[str, bytes], bytes]) -> None:
    for path, entry in items:
        hashing = None
        try:
            with open(path, "rb") as f:
                raw = f.read()
            hashing = _hash_beside(raw, entry)
            entry.content = decode(path, raw)
        except Exception:  # noqa: BLE001 - read again on the main thread, with its errors
            entry.content = None
        finally:
            if hashing is not None:
                hashing.join()
            entry.done.set()


@contextmanager
def read_ahead(
    paths: Iterable[str | os.PathLike],
    *,
    decode: Callable[[str, bytes], bytes] = gunzip_if_gz,
) -> Iterator[None]:
    """Within the block, ``paths`` are read, hashed (SHA-256 of the file) and decoded
    (``decode(path, raw)``: by default gunzipped when they end in ``.gz``) on one background
    thread, in order, up to :data:`READ_AHEAD_MAX_BYTES` of them on disk (the first one
    whatever its size); the results are dropped at the end of the block."""
    items = []
    total = 0
    with _LOCK:
        for path in dict.fromkeys(str(p) for p in paths):
            key = _key(path)
            if key is None or key in _ENTRIES:
                continue
            total += key[1]
            if total > READ_AHEAD_MAX_BYTES and items:
                break
            _ENTRIES[key] = _Entry()
            items.append((key, path))
    thread = threading.Thread(
        target=_work,
        args=([(path, _ENTRIES[key]) for key, path in items], decode),
        name="scaloquant-read-ahead",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        thread.join()
        with _LOCK:
            for key, _ in items:
                _ENTRIES.pop(key, None)


def _entry(path: str | os.PathLike) -> _Entry | None:
    key = _key(path)
    with _LOCK:
        entry = _ENTRIES.get(key) if key is not None else None
    if entry is None:
        return None
    entry.done.wait()
    return entry


def content(path: str | os.PathLike) -> bytes | None:
    """The decoded content of ``path`` if it is being read ahead and has not changed since
    (waiting for it), else None: read it yourself. Given once: a second call reads again."""
    entry = _entry(path)
    if entry is None:
        return None
    value, entry.content = entry.content, None  # the memory is freed once it is taken
    return value


def sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of ``path``'s bytes if it was read ahead and has not changed, else None."""
    entry = _entry(path)
    return None if entry is None else entry.sha256
