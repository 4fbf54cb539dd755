"""Which frame a Label Studio task shows, and that frame as the model and the labels see it.

A task is a pool frame when its ``data.frame_id`` is one (alkit's own tasks carry it) or its
``data.image`` is a pool image's URL (``/data/local-files/?d=`` prefixes stripped); any other
image is read from its URL and scored on the fly. Sizes, image URIs and metadata are what
``export_for_labelling`` records, so an annotation is validated exactly as ``-p labels=``.
"""

from __future__ import annotations

import io
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from alkit.annotate.export import OWN_TABLE_COLUMNS
from alkit.annotate.validate import ExportedBatch
from alkit.data import storage
from alkit.data.datasets import frame_item
from alkit.data.labels import frame_meta
from alkit.data.letterbox import Letterbox
from alkit.data.pool import Pool
from alkit.data.versions import sim_uri
from alkit.errors import AlkitError, DataError


class RequestError(AlkitError):
    """A request the backend refuses: ``status`` (4xx), the ``task`` and ``field`` at fault."""

    def __init__(self, message: str, task: object = None, field: str = "", status: int = 422):
        super().__init__(message)
        self.task, self.field, self.status = task, field, status

    def body(self) -> dict:
        """The JSON answer: ``error`` (the message), ``task``, ``field``."""
        return {"error": str(self), "task": self.task, "field": self.field}


@dataclass(frozen=True)
class TaskImage:
    """A task's image for the model: ``item`` (a dataset item, the input-size image),
    ``letterbox`` (input <-> original px), ``size`` the original ``(H, W)``, ``frame_id``
    (``None`` for an image outside the pool)."""

    item: dict
    letterbox: Letterbox
    size: tuple[int, int]
    frame_id: int | None


def _local_path(url: str) -> str:
    """``/data/local-files/?d=a/b.jpg`` -> ``a/b.jpg``; other URLs unchanged."""
    if "?d=" in url:
        return urllib.parse.unquote(url.split("?d=", 1)[1])
    return url


class ServedFrames:
    """The pool's frames for the backend.

    Args:
        pool: the loop's pool (the world's pool segment, or own images).
        world: the world's config dict (``None`` for own data).
        classes: the run's classes.
        input_size: ``(H, W)`` of the model's input.
        fetch: reads an image URL that is not a local path or fsspec URL (Label Studio's
            ``/data/...`` URLs, ``http(s)://``): ``url -> bytes``; ``None``: plain HTTP(S).
    """

    def __init__(
        self,
        pool: Pool,
        world: dict | None,
        classes: Sequence[str],
        input_size: tuple[int, int],
        fetch: Callable[[str], bytes] | None = None,
    ) -> None:
        self.pool, self.source, self.world = pool, pool.source, world
        self.classes, self.input_size, self.fetch = tuple(classes), tuple(input_size), fetch
        self.own = hasattr(self.source, "letterbox")
        self.ids = set(pool.metadata.frame_id.astype(int).tolist())
        self.by_uri: dict[str, int] = {}
        if "uri" in pool.metadata.columns:
            for fid, uri in zip(pool.metadata.frame_id, pool.metadata.uri, strict=True):
                self.by_uri[str(uri).split("://")[-1].lstrip("/")] = int(fid)

    # -- which frame -----------------------------------------------------------------------

    def frame_of(self, task: Mapping) -> int | None:
        """The pool frame a task shows, or ``None`` (another image); ``RequestError`` naming
        the task and field for a ``data.frame_id`` that is no frame."""
        data = task.get("data")
        tid = task.get("id")
        if not isinstance(data, Mapping):
            raise RequestError(f"task {tid}: field 'data' must be a JSON object", tid, "data")
        if data.get("frame_id") is not None:
            value = data["frame_id"]
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise RequestError(
                    f"task {tid}: field 'data.frame_id' must be an integer, got {value!r}",
                    tid,
                    "data.frame_id",
                )
            try:
                fid = int(value)
            except ValueError:
                raise RequestError(
                    f"task {tid}: field 'data.frame_id' must be an integer, got {value!r}",
                    tid,
                    "data.frame_id",
                ) from None
            if fid in self.ids:
                return fid
            raise RequestError(
                f"task {tid}: field 'data.frame_id' {fid} is no frame of the run's pool",
                tid,
                "data.frame_id",
            )
        image = data.get("image")
        if not isinstance(image, str) or not image:
            raise RequestError(f"task {tid}: field 'data.image' is missing", tid, "data.image")
        return self.by_uri.get(_local_path(image).split("://")[-1].lstrip("/"))

    # -- what the labels are checked against -------------------------------------------------

    def exported(self, frame_ids: Sequence[int]) -> ExportedBatch:
        """The frames as ``export_for_labelling`` records them (sizes, image URIs, metadata)."""
        sizes, uris, names, metas = [], [], [], []
        for fid in frame_ids:
            if self.own:
                box = self.source.letterbox(fid)
                meta = self.source.meta(fid)
                sizes.append((box.height, box.width))
                uris.append(self.source.uri(fid))
                names.append(self.source.uri(fid))
                metas.append({k: v for k, v in meta.items() if k not in OWN_TABLE_COLUMNS})
            else:
                frame = self.source.frame(fid)
                sizes.append(tuple(int(v) for v in np.asarray(frame.image).shape[:2]))
                uris.append(sim_uri(fid))
                names.append(f"{fid:012d}.png")
                metas.append(frame_meta(frame))
        return ExportedBatch(
            "alkit-serve",
            tuple(int(i) for i in frame_ids),
            tuple(sizes),
            tuple(uris),
            tuple(names),
            tuple(metas),
            self.world,
            self.classes,
        )

    # -- what the model sees --------------------------------------------------------------

    def image(self, task: Mapping) -> TaskImage:
        """The task's image for the model (``RequestError`` naming the task and
        ``data.image`` when it cannot be read)."""
        fid = self.frame_of(task)
        tid = task.get("id")
        if fid is not None:
            try:
                frame = self.source.frame(fid)
                box = self.source.letterbox(fid) if self.own else None
            except DataError as err:
                raise RequestError(
                    f"task {tid}: field 'data.image': {err}", tid, "data.image"
                ) from None
            image = np.asarray(frame.image)  # (H, W, 3) uint8
            box = box or Letterbox.of(image.shape[:2], image.shape[:2])
            item = frame_item(fid, image, np.zeros((0, 4)), np.zeros(0))
            return TaskImage(item, box, (box.height, box.width), fid)
        url = str(task["data"]["image"])
        original = self.read_url(url, tid)  # (h, w, 3)
        box = Letterbox.of(original.shape[:2], self.input_size)
        item = frame_item(-1, box.image(original), np.zeros((0, 4)), np.zeros(0))
        return TaskImage(item, box, (box.height, box.width), None)

    def read_url(self, url: str, tid: object) -> np.ndarray:
        """An image URL as ``(H, W, 3)`` uint8."""
        try:
            if url.startswith(("http://", "https://")) or (url.startswith("/data/")):
                if self.fetch is None and not url.startswith(("http://", "https://")):
                    raise DataError("a Label Studio URL needs --label-studio-url and a token")
                data = self.fetch(url) if self.fetch else _http(url)
            else:
                data = storage.read_bytes(url)
            with Image.open(io.BytesIO(data)) as img:
                return np.array(img.convert("RGB"), dtype=np.uint8)
        except (OSError, DataError, UnidentifiedImageError, ValueError) as err:
            raise RequestError(
                f"task {tid}: field 'data.image': cannot read image {url!r} ({err})",
                tid,
                "data.image",
            ) from None


def _http(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=20) as resp:
        return resp.read()


__all__ = ["RequestError", "ServedFrames", "TaskImage"]
