"""Video files as frames, decoded with PyAV.

Frame ``i`` of a file is its ``i``-th video frame in presentation order, counted from 0. Its
URI is ``"<video url>#frame=<i>"`` (:func:`frame_uri`); :func:`alkit.data.coco.read_image`
reads such a URI (through :func:`read_frame`), so a dataset version can hold video frames as
image URIs.

A file is indexed once per process by demuxing its packets (timestamps and key-frame flags,
no decoding): :class:`VideoIndex`. A :class:`VideoReader` keeps the file's container and
decoder open and decodes forward, so frames asked for in file order cost one decode each; it
seeks only when going backwards or when the frame's key frame lies beyond the next frame to
decode (seeking then skips frames that decoding forward would decode for nothing).

Readers are opened lazily, in the process that reads: :class:`VideoReaders` (a small LRU of
open readers) forgets what it holds when it finds itself in another process (a forked
DataLoader worker) and pickles empty, so no open container is shared across processes.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import av
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from alkit.data import storage
from alkit.errors import ConfigError, DataError

#: File name endings read as video (case-insensitive).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".avi", ".mkv", ".webm")
#: What separates a video's URL from the frame index in a frame URI.
FRAME_MARK = "#frame="
#: Readers (open containers + decoders) one process keeps open at most.
OPEN_VIDEOS = 8

_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


def is_video(url: str) -> bool:
    """Whether ``url`` names a video file by its ending."""
    return str(url).lower().endswith(VIDEO_EXTENSIONS)


def frame_uri(video_url: str, index: int) -> str:
    """The URI of frame ``index`` of ``video_url``: ``"<video url>#frame=<index>"``."""
    return f"{video_url}{FRAME_MARK}{int(index)}"


def split_frame_uri(uri: str) -> tuple[str, int] | None:
    """``(video url, frame index)`` of a frame URI; ``None`` if ``uri`` is not one."""
    url, mark, index = str(uri).rpartition(FRAME_MARK)
    if not mark or not url or not index.isdigit():
        return None
    return url, int(index)


@dataclass(frozen=True, eq=False)
class VideoIndex:
    """A video file's frames, from its packets (nothing decoded).

    Attributes:
        url: the file.
        height, width: frame size in pixels.
        pts: ``(F,)`` int64 presentation timestamps, ascending, in ``time_base`` units.
        keyframe: ``(F,)`` int64: for each frame, the index of the last key frame at or
            before it (where decoding can start).
        time_base: seconds per ``pts`` unit.
    """

    url: str
    height: int
    width: int
    pts: np.ndarray
    keyframe: np.ndarray
    time_base: Fraction

    def __len__(self) -> int:
        return len(self.pts)

    @cached_property
    def time_s(self) -> np.ndarray:
        """``(F,)`` float64 seconds since the first frame."""
        ticks = self.pts - self.pts[0]  # (F,)
        return ticks * (self.time_base.numerator / self.time_base.denominator)

    def sample(self, fps: float | None) -> np.ndarray:
        """``(K,)`` int64 indices of the frames kept at ``fps`` frames per second.

        ``None`` keeps every frame. Otherwise time is cut into slots of ``1 / fps`` s from the
        first frame and the first frame of each slot is kept (every frame when ``fps`` is at
        least the video's rate). Timestamps are rounded to ``time_base`` in the file, so where
        a tick is under a quarter of a frame a frame counts as half a tick later than stamped:
        a frame stamped 0.333 s (true 1/3 s) in a millisecond time base opens the slot that
        starts at 1/3 s. Coarser time bases (a tick per frame: AVI) are taken as exact.
        """
        if fps is None:
            return np.arange(len(self), dtype=np.int64)
        if not fps > 0:
            raise ConfigError(f"fps must be a positive number of frames per second, got {fps!r}")
        ticks = (self.pts - self.pts[0]).tolist()
        step = int(np.median(np.diff(self.pts))) if len(self) > 1 else 1
        slack = Fraction(1, 2) if step >= 4 else Fraction(0)  # in ticks
        scale = self.time_base * Fraction(fps).limit_denominator(1_000_000)  # slots per tick
        num, den = scale.numerator, scale.denominator * slack.denominator
        slots = [(t * slack.denominator + slack.numerator) * num // den for t in ticks]  # exact
        keep = [i for i, s in enumerate(slots) if i == 0 or s != slots[i - 1]]
        return np.asarray(keep, dtype=np.int64)


def _open(url: str):
    """``(container, file handle or None)``: local files by path, others through fsspec."""
    fs, path = storage.filesystem(url)
    if isinstance(fs, LocalFileSystem):
        if not os.path.isfile(path):
            raise DataError(f"video file not found: {url}")
        return av.open(path), None
    if not fs.exists(path):
        raise DataError(f"video file not found: {url}")
    handle = fs.open(path, "rb")
    try:
        return av.open(handle), handle
    except BaseException:
        handle.close()
        raise


def _index(container, stream, url: str) -> VideoIndex:
    pts, key = [], []
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue  # the flush packet; pre-roll the decoder drops
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            raise DataError(f"video {url}: a packet has no timestamp; re-encode the file")
        pts.append(stamp)
        key.append(packet.is_keyframe)
    if not pts:
        raise DataError(f"video {url} has no frames")
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")  # (F,)
    sorted_pts = np.asarray(pts, np.int64)[order]  # (F,)
    if (np.diff(sorted_pts) == 0).any():
        raise DataError(f"video {url}: two frames share a timestamp; re-encode the file")
    is_key = np.asarray(key, bool)[order]  # (F,)
    positions = np.arange(len(order), dtype=np.int64)
    keyframe = np.maximum.accumulate(np.where(is_key, positions, 0))  # (F,)
    ctx = stream.codec_context
    return VideoIndex(url, int(ctx.height), int(ctx.width), sorted_pts, keyframe, stream.time_base)


class VideoReader:
    """An open video file: ``frame(i)`` decodes frame ``i`` (forward when it can).

    Not picklable and not to be shared across processes: get readers from
    :class:`VideoReaders`.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._container, self._handle = None, None
        try:
            self._container, self._handle = _open(url)
            if not self._container.streams.video:
                raise DataError(f"{url} has no video stream")
            self._stream = self._container.streams.video[0]
            self.index = _index(self._container, self._stream, url)
        except DataError:
            self.close()
            raise
        except _ERRORS as err:
            self.close()
            raise DataError(f"cannot read video {url}: {err}") from None
        except BaseException:
            self.close()
            raise
        self._frames = None  # the decode iterator, None until the first seek
        self._position = -1  # index of the last frame decoded; -1: none since the seek
        self._last: np.ndarray | None = None

    def __getstate__(self):
        raise TypeError("VideoReader holds an open file; pickle the URL instead")

    def close(self) -> None:
        """Close the container (and the fsspec file under it)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _seek(self, index: int) -> None:
        target = int(self.index.pts[index])
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._position, self._last = -1, None

    def _decode_to(self, index: int) -> np.ndarray | None:
        """Decode forward to frame ``index``; ``None`` if the stream passes it or ends."""
        target = int(self.index.pts[index])
        for frame in self._frames:
            if frame.pts is None:
                continue
            if frame.pts > target:
                return None
            self._position = int(np.searchsorted(self.index.pts, frame.pts, "right")) - 1
            if frame.pts == target:
                self._last = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
                return self._last
        return None

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB; ``DataError`` naming file and frame."""
        index = int(index)
        n = len(self.index)
        if not 0 <= index < n:
            raise DataError(f"video {self.url} has {n} frames; there is no frame {index}")
        if index == self._position and self._last is not None:
            return self._last.copy()
        try:
            behind = self._frames is None or index < self._position
            if behind or int(self.index.keyframe[index]) > self._position + 1:
                self._seek(index)
            image = self._decode_to(index)
            if image is None:  # the seek landed past the frame (a poor index): from the start
                self._seek(0)
                image = self._decode_to(index)
        except _ERRORS as err:
            self._frames = None
            raise DataError(f"cannot decode frame {index} of video {self.url}: {err}") from None
        if image is None:
            self._frames = None
            raise DataError(
                f"cannot decode frame {index} of video {self.url}: the stream ends or skips it "
                "(truncated or corrupt file?)"
            )
        return image.copy()


class VideoReaders:
    """Open :class:`VideoReader` s by URL, the ``capacity`` most recently used, per process.

    In another process than the one that opened them (a forked DataLoader worker) it starts
    empty, and it pickles empty: each process opens its own containers.
    """

    def __init__(self, capacity: int = OPEN_VIDEOS) -> None:
        self.capacity = capacity
        self._pid = os.getpid()
        self._lock = threading.Lock()  # get() from threads (headers read in parallel)
        self._readers: OrderedDict[str, VideoReader] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"capacity": self.capacity}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["capacity"])

    def get(self, url: str) -> VideoReader:
        """The open reader of ``url`` (opened and indexed on first use in this process).

        A reader decodes for one caller at a time: share it between threads only with care.
        """
        if os.getpid() != self._pid:
            self._forget()
        with self._lock:
            reader = self._readers.get(url)
            if reader is None:
                reader = VideoReader(url)
                self._readers[url] = reader
                while len(self._readers) > self.capacity:
                    self._readers.popitem(last=False)[1].close()
            self._readers.move_to_end(url)
            return reader

    def _forget(self) -> None:
        # Forked: the parent's containers are not ours to use (their file offsets are shared
        # with the parent) nor to free (freeing a decoder joins threads that exist only in
        # the parent), so they are kept, unused, for the life of this process.
        _ORPHANS.extend(self._readers.values())
        self._pid, self._readers, self._lock = os.getpid(), OrderedDict(), threading.Lock()

    def clear(self) -> None:
        """Close every reader this process opened."""
        if os.getpid() != self._pid:
            self._forget()
        for reader in self._readers.values():
            reader.close()
        self._readers = OrderedDict()


_ORPHANS: list[VideoReader] = []


#: The readers :func:`read_frame` and :func:`video_index` use in this process.
READERS = VideoReaders()


def video_index(url: str) -> VideoIndex:
    """The frames of the video at ``url`` (``DataError`` naming it if unreadable)."""
    return READERS.get(url).index


def read_frame(uri: str) -> np.ndarray:
    """The frame at a frame URI ``"<video url>#frame=<i>"`` as ``(H, W, 3)`` uint8 RGB."""
    parts = split_frame_uri(uri)
    if parts is None:
        raise DataError(f"not a video frame URI (expected '<video url>{FRAME_MARK}<i>'): {uri}")
    url, index = parts
    return READERS.get(url).frame(index)


__all__ = [
    "FRAME_MARK",
    "READERS",
    "VIDEO_EXTENSIONS",
    "VideoIndex",
    "VideoReader",
    "VideoReaders",
    "frame_uri",
    "is_video",
    "read_frame",
    "split_frame_uri",
    "video_index",
]
