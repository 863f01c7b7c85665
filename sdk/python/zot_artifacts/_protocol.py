"""The sans-IO core's vocabulary. An operation is a generator that *yields instructions* and
receives their results; :class:`zot_artifacts.Client` and :class:`zot_artifacts.AsyncClient`
are thin drivers that carry the instructions out (blocking httpx and threads, or httpx's
async client and asyncio tasks). Every decision - request building, parsing, retries,
resuming, part planning - lives in the operations, once.

Instructions:

* :class:`Call` - one HTTP request; the driver answers a :class:`Reply` or throws an
  :class:`~zot_artifacts.errors.ArtifactStoreError` into the generator (any non-2xx status
  outside ``Call.accept``, or a transport failure with ``http_status == 0``). Drivers never
  retry: :func:`zot_artifacts._ops.Operations.send` does.
* :class:`Blocking` - run a blocking function (file IO, hashing) and answer its result
  (in a worker thread for the async driver).
* :class:`Parallel` - run sub-operations at most ``limit`` at a time, answer their results in
  order; the first failure cancels the rest and is thrown into the generator.
* :class:`Sleep` - wait.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from .errors import ArtifactStoreError

T = TypeVar("T")
CHUNK = 1 << 20


@dataclass
class Body:
    """A request body streamed from ``source[offset:offset+length]``; ``on_chunk`` sees each
    chunk as it goes out (hashing, progress)."""

    source: Source
    offset: int
    length: int | None
    on_chunk: Callable[[bytes], None] | None = None
    on_start: Callable[[], None] | None = None  # before each attempt sends it


@dataclass
class Call:
    method: str
    url: str  # relative to base_url, or absolute (token endpoints)
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    form: dict[str, str] | None = None
    body: Body | None = None
    idempotent: bool = True
    auth: bool = True  # send the client's credentials
    accept: tuple[int, ...] = ()  # non-2xx statuses answered as a Reply, not an error
    # Streaming responses: the driver calls on_headers(reply) then on_chunk(bytes) per chunk.
    on_headers: Callable[[Reply], None] | None = None
    on_chunk: Callable[[bytes], None] | None = None


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
    content: bytes = b""

    def json(self) -> Any:
        import json

        return json.loads(self.content) if self.content else None


@dataclass
class Blocking:
    fn: Callable[[], Any]


@dataclass
class Parallel:
    ops: list[Generator[Any, Any, Any]]
    limit: int


@dataclass
class Sleep:
    seconds: float


Instruction = Union[Call, Blocking, Parallel, Sleep]
Op = Generator[Instruction, Any, T]


class Source:
    """Upload bytes from a path, ``bytes`` or a binary file object, read in chunks."""

    size: int | None = None
    replayable = True  # can the same range be read again (retries, resume)?
    name = "<data>"

    def iter_range(self, offset: int, length: int | None) -> Iterator[bytes]:
        raise NotImplementedError

    def sha256_range(self, offset: int, length: int | None) -> str:
        h = hashlib.sha256()
        for chunk in self.iter_range(offset, length):
            h.update(chunk)
        return h.hexdigest()

    @staticmethod
    def of(obj: Any) -> Source:
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return BytesSource(bytes(obj))
        if isinstance(obj, (str, os.PathLike)):
            return PathSource(os.fspath(obj))
        if hasattr(obj, "read"):
            try:
                if obj.seekable():
                    return SeekableSource(obj)
            except (AttributeError, OSError, ValueError):
                pass
            return StreamSource(obj)
        raise TypeError(
            f"cannot upload a {type(obj).__name__}: give a path, bytes or a binary file object"
        )


class BytesSource(Source):
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.size = len(data)

    def iter_range(self, offset: int, length: int | None) -> Iterator[bytes]:
        end = self.size if length is None else offset + length
        for pos in range(offset, end, CHUNK):
            yield bytes(self.data[pos : min(pos + CHUNK, end)])


class PathSource(Source):
    def __init__(self, path: str) -> None:
        self.path = path
        self.name = path
        self.size = os.stat(path).st_size

    def iter_range(self, offset: int, length: int | None) -> Iterator[bytes]:
        remaining = (self.size or 0) - offset if length is None else length
        with open(self.path, "rb", buffering=0) as f:
            f.seek(offset)
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    raise ArtifactStoreError(
                        f"{self.path} shrank while it was uploaded", code="SourceChanged"
                    )
                remaining -= len(chunk)
                yield chunk


class SeekableSource(Source):
    """A seekable file object: its size from its end; ranges read under a lock, so parallel
    parts can share it."""

    def __init__(self, f: io.IOBase) -> None:
        self.f = f
        self.lock = threading.Lock()
        self.start = f.tell()
        self.size = f.seek(0, os.SEEK_END) - self.start
        f.seek(self.start)
        self.name = str(getattr(f, "name", "<stream>"))

    def iter_range(self, offset: int, length: int | None) -> Iterator[bytes]:
        pos = offset
        end = (self.size or 0) if length is None else offset + length
        while pos < end:
            with self.lock:
                self.f.seek(self.start + pos)
                chunk = self.f.read(min(CHUNK, end - pos))
            if not chunk:
                raise ArtifactStoreError("the stream ended early", code="SourceChanged")
            pos += len(chunk)
            yield chunk


class StreamSource(Source):
    """A stream that can only be read forwards, once: its size is unknown."""

    replayable = False

    def __init__(self, f: Any) -> None:
        self.f = f
        self.size = None
        self.name = str(getattr(f, "name", "<stream>"))

    def iter_range(self, offset: int, length: int | None) -> Iterator[bytes]:
        while True:
            chunk = self.f.read(CHUNK)
            if not chunk:
                return
            yield bytes(chunk)
