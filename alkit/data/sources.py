"""Pool sources over a team's own data: a folder of images, video files, a table of URIs.

:func:`open_pool` reads any fsspec URL into a :class:`~alkit.data.pool.Pool`:

- a **folder of images** (``.jpg``, ``.jpeg``, ``.png``, any case, read recursively): a
  subfolder is a driving session (``session_id`` its path relative to the folder, ``"."`` for
  files at the top); ``frame_index`` is a file's position in its session in name order;
- **video files** (``.mp4 .mov .avi .mkv .webm``), one or a folder of them: a file is a
  session (``session_id`` its relative path); frames are sampled at ``fps`` (``None``: all),
  ``frame_index`` is the frame's index in the file and ``time_s`` its time in seconds;
- a **table** (``.parquet`` or ``.csv``) with a ``uri`` column (absolute URLs, or paths
  relative to the table's folder; image files or video frames) and any metadata columns.

Every pool's metadata has the columns ``frame_id`` (int, :func:`stable_frame_id`), ``uri`` (the
original image's URL; ``"<video url>#frame=<i>"`` for a video frame), ``session_id``,
``frame_index``, ``height``, ``width`` (original pixels), then the source's own columns. One
class, :class:`ImageSource`, loads the frames of all three: its images are at URIs, and
:func:`alkit.data.coco.read_image` reads image files and video frames alike (videos decode
forward through :mod:`alkit.data.video`, so frames asked for in table order cost one decode
each). Hidden files and folders (names starting with ``.``) are skipped.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import fsspec
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from alkit.data import storage, video
from alkit.data.coco import read_image, read_letterboxed
from alkit.data.frames import Frame
from alkit.data.letterbox import Letterbox
from alkit.data.letterbox import input_size as check_input_size
from alkit.data.pool import Pool
from alkit.errors import ConfigError, DataError

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
#: File name endings read as tables of URIs (case-insensitive).
TABLE_EXTENSIONS: tuple[str, ...] = (".parquet", ".csv")
#: The columns every own-data pool's metadata starts with.
COLUMNS: tuple[str, ...] = ("frame_id", "uri", "session_id", "frame_index", "height", "width")
#: Files whose headers are read at once when a pool is opened (I/O bound: object storage).
_HEADER_THREADS = 16


def stable_frame_id(key: str) -> int:
    """The frame id of ``key``: the first 52 bits of its sha256, an int below ``2**53`` (exact
    in JSON and JavaScript), the same on every machine and in every run."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:7], "big") >> 4


def check_unique_ids(frame_ids: Sequence[int], keys: Sequence[str], where: str) -> None:
    """``DataError`` naming both keys when two keys have the same frame id."""
    first: dict[int, int] = {}
    for position, frame_id in enumerate(frame_ids):
        other = first.setdefault(int(frame_id), position)
        if other != position:
            raise DataError(
                f"{where}: {keys[other]!r} and {keys[position]!r} have the same frame id "
                f"{int(frame_id)} (the same key twice, or a hash collision: rename one)"
            )


def image_size(uri: str) -> tuple[int, int]:
    """``(height, width)`` of the image at ``uri`` from its header (nothing decoded); a video
    frame's from its file's stream. Unreadable: ``DataError`` naming the file."""
    parts = video.split_frame_uri(uri)
    if parts is not None:
        index = video.video_index(parts[0])
        return index.height, index.width
    try:
        with fsspec.open(uri, "rb") as handle, Image.open(handle) as img:
            width, height = img.size
    except FileNotFoundError:
        raise DataError(f"image file not found: {uri}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {uri}: {err}") from None
    return int(height), int(width)


def _image_sizes(uris: Sequence[str]) -> list[tuple[int, int]]:
    if len(uris) < 2:
        return [image_size(u) for u in uris]
    with ThreadPoolExecutor(min(_HEADER_THREADS, len(uris))) as pool:
        return list(pool.map(image_size, uris))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


class ImageSource:
    """Frames whose images are at URIs: image files, or video frames ``<video url>#frame=<i>``.

    ``frame(frame_id)`` has the image letterboxed into ``input_size`` ``(H, W)``, no boxes,
    and the frame's metadata row as ``meta`` (a dict). The source holds only its table and
    plain values (videos are opened per process, on first read), so it pickles into
    DataLoader workers.

    Args:
        metadata: one row per frame with at least ``frame_id`` (unique ints), ``uri``,
            ``height``, ``width`` (the image's size in pixels, checked on every read).
        input_size: ``(H, W)`` of the model's input.
        origin: where ``height``/``width`` came from, for the error when an image differs.
    """

    def __init__(
        self, metadata: pd.DataFrame, input_size: Sequence[int], origin: str = "the pool table"
    ) -> None:
        missing = [c for c in ("frame_id", "uri", "height", "width") if c not in metadata]
        if missing:
            raise DataError(f"ImageSource: metadata lacks column(s) {missing}")
        self.metadata = metadata.reset_index(drop=True)
        self.input_size = check_input_size(input_size)
        self.origin = origin
        check_unique_ids(self.metadata.frame_id.tolist(), self.metadata.uri.tolist(), origin)
        self._rows = pd.Index(self.metadata.frame_id.astype(np.int64))

    def __len__(self) -> int:
        return len(self.metadata)

    def __repr__(self) -> str:
        return f"ImageSource({len(self)} frames from {self.origin}, input {self.input_size})"

    def _row(self, frame_id: int) -> int:
        try:
            return int(self._rows.get_loc(int(frame_id)))
        except KeyError:
            raise DataError(f"no frame {frame_id} in {self.origin}") from None

    def uri(self, frame_id: int) -> str:
        """The URL of frame ``frame_id``'s original image."""
        return str(self.metadata.uri.iat[self._row(frame_id)])

    def meta(self, frame_id: int) -> dict:
        """Frame ``frame_id``'s metadata row as plain Python values."""
        row = self.metadata.iloc[self._row(frame_id)]
        return {str(k): _plain(v) for k, v in row.items()}

    def letterbox(self, frame_id: int) -> Letterbox:
        """Where the frame's original image sits in the input (boxes go through it)."""
        row = self._row(frame_id)
        hw = (int(self.metadata.height.iat[row]), int(self.metadata.width.iat[row]))
        return Letterbox.of(hw, self.input_size)

    def original(self, frame_id: int) -> np.ndarray:
        """The frame's full-size image ``(h, w, 3)`` uint8; ``DataError`` naming the frame and
        file when it cannot be read or its size differs from the table's."""
        row = self._row(frame_id)
        uri = str(self.metadata.uri.iat[row])
        try:
            image = read_image(uri)  # (h, w, 3)
        except DataError as err:
            raise DataError(f"frame {frame_id}: {err}") from None
        hw = (int(self.metadata.height.iat[row]), int(self.metadata.width.iat[row]))
        if tuple(image.shape[:2]) != hw:
            raise DataError(
                f"frame {frame_id}: image {uri} is {image.shape[0]}x{image.shape[1]} (HxW) but "
                f"{self.origin} says {hw[0]}x{hw[1]} (fields 'height', 'width')"
            )
        return image

    def image(self, frame_id: int) -> np.ndarray:
        """The frame's image letterboxed to ``input_size``: ``(H, W, 3)`` uint8, read as
        training reads image files (``alkit.data.coco.read_letterboxed``: a JPEG decoded at
        a reduced scale)."""
        says = f"{self.origin} says"
        try:
            return read_letterboxed(self.uri(frame_id), self.letterbox(frame_id), says)
        except DataError as err:
            raise DataError(f"frame {frame_id}: {err}") from None

    def frame(self, frame_id: int) -> Frame:
        """The frame, its image letterboxed to ``input_size``: ``(H, W, 3)`` uint8."""
        return Frame(
            int(frame_id),
            self.image(frame_id),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int64),
            self.meta(frame_id),
        )


# ---------------------------------------------------------------------------------------------
# reading a folder, videos or a table into metadata


def _root_url(url: str) -> str:
    url = str(url).rstrip("/")
    return url if "://" in url else posixpath.abspath(url)


def _scan(url: str) -> list[str]:
    """Paths of the visible files under folder ``url``, relative to it (posix), sorted."""
    fs, root = storage.filesystem(url)
    root = root.rstrip("/")
    out = []
    for path in fs.find(root):
        rel = path[len(root) :].lstrip("/")
        if rel and not any(part.startswith(".") for part in rel.split("/")):
            out.append(rel)
    return sorted(out)


def _scan_kind(url: str, extensions: tuple[str, ...]) -> list[str]:
    return [rel for rel in _scan(url) if rel.lower().endswith(extensions)]


def _session(rel: str) -> str:
    return posixpath.dirname(rel) or "."


def folder_metadata(url: str, files: Sequence[str] | None = None) -> pd.DataFrame:
    """The pool table of the images under folder ``url`` (``files``: their relative paths,
    found by scanning when ``None``). Sizes are read from the image headers."""
    root = _root_url(url)
    rels = sorted(files if files is not None else _scan_kind(url, IMAGE_EXTENSIONS))
    if not rels:
        raise DataError(f"no images under {url} (looked for {IMAGE_EXTENSIONS}, any case)")
    rels.sort(key=lambda rel: (_session(rel), rel))
    uris = [storage.join(root, rel) for rel in rels]
    sizes = _image_sizes(uris)
    table = pd.DataFrame(
        {
            "frame_id": np.array([stable_frame_id(r) for r in rels], np.int64),
            "uri": uris,
            "session_id": [_session(r) for r in rels],
            "height": np.array([h for h, _ in sizes], np.int64),
            "width": np.array([w for _, w in sizes], np.int64),
        }
    )
    table.insert(3, "frame_index", table.groupby("session_id").cumcount().astype(np.int64))
    check_unique_ids(table.frame_id.tolist(), rels, f"image folder {url}")
    return table


def video_metadata(url: str, fps: float | None = None, files: Sequence[str] | None = None):
    """The pool table of a video file or of the videos under folder ``url`` (``files``: their
    relative paths), frames sampled at ``fps`` (``None``: every frame), with ``time_s``."""
    if files is None and video.is_video(url):
        root, files = storage.parent(_root_url(url)), [posixpath.basename(url.rstrip("/"))]
    else:
        root = _root_url(url)
        files = sorted(files if files is not None else _scan_kind(url, video.VIDEO_EXTENSIONS))
    if not files:
        raise DataError(f"no videos under {url} (looked for {video.VIDEO_EXTENSIONS}, any case)")
    parts, keys = [], []
    for rel in files:
        video_url = storage.join(root, rel)
        index = video.video_index(video_url)
        kept = index.sample(fps)  # (K,)
        file_keys = [f"{rel}#{i}" for i in kept.tolist()]
        keys.extend(file_keys)
        parts.append(
            pd.DataFrame(
                {
                    "frame_id": np.array([stable_frame_id(k) for k in file_keys], np.int64),
                    "uri": [video.frame_uri(video_url, i) for i in kept.tolist()],
                    "session_id": rel,
                    "frame_index": kept,
                    "height": index.height,
                    "width": index.width,
                    "time_s": index.time_s[kept],
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    check_unique_ids(table.frame_id.tolist(), keys, f"videos {url}")
    return table


def _read_table(url: str) -> pd.DataFrame:
    if url.lower().endswith(".parquet"):
        try:
            return storage.read_parquet(url)
        except FileNotFoundError:
            raise DataError(f"pool table not found: {url}") from None
    try:
        with fsspec.open(url, "rb") as handle:
            return pd.read_csv(handle)
    except FileNotFoundError:
        raise DataError(f"pool table not found: {url}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{url}: cannot read CSV: {err}") from None


def _int_column(table: pd.DataFrame, column: str, url: str) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")  # (F,)
    bad = values.isna() | (values != values.round())
    if column != "frame_id":
        bad |= values < 1
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"table {url}, row {row}: field {column!r} must be a "
            f"{'positive ' if column != 'frame_id' else ''}integer, got {table[column].iat[row]!r}"
        )
    return values.to_numpy().astype(np.int64)


def table_metadata(url: str) -> pd.DataFrame:
    """The pool table of a Parquet or CSV file with a ``uri`` column.

    ``uri``: absolute URLs or paths relative to the table's folder (resolved in the result).
    Optional: ``frame_id`` (else :func:`stable_frame_id` of the uri as written),
    ``session_id`` (else the uri's folder; a video frame's video), ``frame_index`` (else the
    frame number of a video frame, or the position in its session in table order),
    ``height`` and ``width`` (else read from the image headers; when given, every read checks
    the image against them). Other columns are kept.
    """
    table = _read_table(url).reset_index(drop=True)
    if "uri" not in table.columns:
        raise DataError(f"table {url} has no 'uri' column; columns: {list(table.columns)}")
    empty = table.uri.isna() | (table.uri.astype(str).str.strip() == "")
    if empty.any():
        raise DataError(f"table {url}, row {int(np.flatnonzero(empty)[0])}: field 'uri' is empty")
    written = table.uri.astype(str).tolist()
    folder = storage.parent(_root_url(url))
    uris = [storage.resolve(folder, u) for u in written]
    if "frame_id" in table.columns:
        ids = _int_column(table, "frame_id", url)
    else:
        ids = np.array([stable_frame_id(u) for u in written], np.int64)
    check_unique_ids(ids.tolist(), written, f"table {url}")
    out = pd.DataFrame({"frame_id": ids, "uri": uris})
    if "session_id" in table.columns:
        out["session_id"] = table.session_id
    else:
        frames = [video.split_frame_uri(u) for u in written]
        out["session_id"] = [
            f[0] if f else posixpath.dirname(u) or "." for f, u in zip(frames, written, strict=True)
        ]
    if "frame_index" in table.columns:
        out["frame_index"] = table.frame_index
    else:
        position = out.groupby("session_id", sort=False).cumcount().to_numpy()
        numbers = [video.split_frame_uri(u) for u in written]
        out["frame_index"] = [n[1] if n else int(p) for n, p in zip(numbers, position, strict=True)]
    given = [c for c in ("height", "width") if c in table.columns]
    if len(given) == 1:
        missing = ({"height", "width"} - set(given)).pop()
        raise DataError(f"table {url} has a {given[0]!r} column but no {missing!r} column")
    if given:
        out["height"] = _int_column(table, "height", url)
        out["width"] = _int_column(table, "width", url)
    else:
        sizes = _image_sizes(uris)
        out["height"] = np.array([h for h, _ in sizes], np.int64)
        out["width"] = np.array([w for _, w in sizes], np.int64)
    rest = [c for c in table.columns if c not in COLUMNS]
    return pd.concat([out, table[rest]], axis=1)


# ---------------------------------------------------------------------------------------------
# the entry point


def open_source(url: str, input_size: Sequence[int], fps: float | None = None) -> ImageSource:
    """The :class:`ImageSource` of ``url`` (see :func:`open_pool`)."""
    size = check_input_size(input_size)
    lower = str(url).lower().rstrip("/")

    def no_fps(kind: str) -> None:
        if fps is not None:
            raise ConfigError(f"fps={fps!r} applies only to videos; {url} is {kind}")

    if lower.endswith(TABLE_EXTENSIONS):
        no_fps("a table")
        return ImageSource(table_metadata(url), size, f"table {url}")
    fs, path = storage.filesystem(url)
    if video.is_video(lower):
        if not fs.isfile(path):
            raise DataError(f"video file not found: {url}")
        return ImageSource(video_metadata(url, fps), size, f"video {url}")
    if not fs.exists(path):
        raise DataError(f"open_pool: no file or folder at {url}")
    if not fs.isdir(path):
        raise ConfigError(
            f"open_pool: cannot read {url}: expected a folder of images {IMAGE_EXTENSIONS} or "
            f"videos, a video file {video.VIDEO_EXTENSIONS} or a table {TABLE_EXTENSIONS}"
        )
    files = _scan(url)
    images = [r for r in files if r.lower().endswith(IMAGE_EXTENSIONS)]
    videos = [r for r in files if video.is_video(r)]
    if images and videos:
        raise ConfigError(
            f"{url} holds both images ({len(images)}, e.g. {images[0]}) and videos "
            f"({len(videos)}, e.g. {videos[0]}); a pool reads one kind: put them in two folders"
        )
    if videos:
        return ImageSource(video_metadata(url, fps, videos), size, f"videos under {url}")
    if not images:
        raise DataError(
            f"no images or videos under {url} "
            f"(looked for {IMAGE_EXTENSIONS + video.VIDEO_EXTENSIONS}, any case)"
        )
    no_fps("a folder of images")
    return ImageSource(folder_metadata(url, images), size, f"image folder {url} (headers)")


def open_pool(url: str, input_size: Sequence[int], fps: float | None = None) -> Pool:
    """An unlabelled pool over a team's own data at any fsspec URL.

    Args:
        url: a folder of images (a subfolder is a session), a video file or a folder of
            videos (a file is a session), or a ``.parquet`` / ``.csv`` table with a ``uri``
            column (see the module docstring).
        input_size: ``(H, W)`` every frame's image is letterboxed into.
        fps: videos only: frames kept per second (``None``: every frame).

    Returns:
        ``Pool(source, metadata)``: ``source`` an :class:`ImageSource`, ``metadata`` its table
        (``frame_id``, ``uri``, ``session_id``, ``frame_index``, ``height``, ``width``, ...).

    Raises ``DataError`` (unreadable image or video, empty folder, table without ``uri``,
    duplicate ids; each naming the file, row or field) or ``ConfigError`` (what ``url`` is
    cannot be told; images and videos mixed; ``fps`` for images).
    """
    source = open_source(url, input_size, fps)
    return Pool(source, source.metadata)


__all__ = [
    "COLUMNS",
    "IMAGE_EXTENSIONS",
    "TABLE_EXTENSIONS",
    "ImageSource",
    "check_unique_ids",
    "folder_metadata",
    "image_size",
    "open_pool",
    "open_source",
    "stable_frame_id",
    "table_metadata",
    "video_metadata",
]
