"""Reads and atomic writes on any fsspec URL (local paths, ``memory://``, ``s3://``, ...).

Every write goes to a temporary sibling ``<name>.tmp-<uuid>`` first and is then moved onto
the final name, so a reader never sees a half-written file under the final name; on failure
the temporary file is removed and the previous file (if any) is left untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alkit.errors import DataError


def file_sha256(url: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes on any URL, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with fsspec.open(str(url), "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` and the path on it (protocol stripped)."""
    return fsspec.core.url_to_fs(url)


def join(url: str, *parts: str) -> str:
    """``url`` and ``parts`` joined with ``/`` (no doubled separators)."""
    out = str(url)
    for part in parts:
        part = str(part).strip("/")
        if not part:
            continue
        if not out.endswith("/"):
            out += "/"
        out += part
    return out


def is_absolute(url: str) -> bool:
    """Whether ``url`` has a protocol (``s3://...``) or is an absolute local path, rather than
    a path relative to some folder."""
    return "://" in url or url.startswith("/")


def resolve(folder: str, url: str) -> str:
    """``url`` as it is when absolute (``is_absolute``), else joined under ``folder``."""
    return url if is_absolute(url) else join(folder, url)


def parent(url: str) -> str:
    """The folder holding ``url`` (``memory://a/b.json`` -> ``memory://a``)."""
    if "://" in url:
        protocol, rest = url.split("://", 1)
        return f"{protocol}://{posixpath.dirname(rest.rstrip('/'))}"
    return os.path.dirname(os.path.abspath(url))


def exists(url: str) -> bool:
    """Whether a file or folder exists at ``url``."""
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def list_names(url: str) -> list[str]:
    """Names (not paths) of the entries directly under folder ``url``; ``[]`` if absent."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


@contextlib.contextmanager
def atomic_open(url: str) -> Iterator[IO[bytes]]:
    """Binary file handle whose content appears at ``url`` only once the block succeeds.

    Writes ``<url>.tmp-<uuid>``, then moves it onto ``url``; if the block raises, the
    temporary file is removed and ``url`` keeps its previous content (or stays absent).
    """
    fs, path = filesystem(url)
    folder = posixpath.dirname(path)
    if folder:
        fs.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "wb") as handle:
            yield handle
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise


def atomic_write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically."""
    with atomic_open(url) as handle:
        handle.write(data)


def atomic_write_text(url: str, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``url`` atomically."""
    atomic_write_bytes(url, text.encode(encoding))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_json(url: str, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON (sorted keys, indented; numpy scalars allowed) atomically."""
    text = json.dumps(obj, sort_keys=True, indent=indent, default=_json_default, allow_nan=True)
    atomic_write_text(url, text + "\n")


def atomic_write_parquet(df: pd.DataFrame, url: str, **kwargs: Any) -> None:
    """Write ``df`` as Parquet (without its index, unless ``index=True``) atomically.

    The table is streamed into the temporary file; ``kwargs`` go to ``DataFrame.to_parquet``.
    """
    kwargs.setdefault("index", False)
    with atomic_open(url) as handle:
        df.to_parquet(handle, **kwargs)


def read_bytes(url: str) -> bytes:
    """The bytes of the file at ``url``; ``FileNotFoundError`` naming it if absent."""
    try:
        with fsspec.open(url, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {url}") from None


def read_json(url: str) -> Any:
    """Parsed JSON at ``url``; malformed JSON is a ``DataError`` with the file and position."""
    data = read_bytes(url)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{url}: not UTF-8 text (byte {err.start}): {err.reason}") from None
    except json.JSONDecodeError as err:
        raise DataError(
            f"{url}: malformed JSON at line {err.lineno}, column {err.colno} "
            f"(char {err.pos}): {err.msg}"
        ) from None


def read_parquet(
    url: str,
    columns: list[str] | None = None,
    filters: list[tuple] | None = None,
) -> pd.DataFrame:
    """A Parquet file as a DataFrame, reading only ``columns`` and rows passing ``filters``.

    ``filters`` are pyarrow's (``[("col", "in", [...]), ...]``): whole row groups are
    skipped by their statistics, so large files are not loaded whole. An unreadable file is
    a ``DataError`` naming it; a missing one a ``FileNotFoundError`` naming it.
    """
    fs, path = filesystem(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"no such file: {url}")
    try:
        table = pq.read_table(path, filesystem=fs, columns=columns, filters=filters)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{url}: cannot read Parquet: {err}") from None
    return table.to_pandas()
