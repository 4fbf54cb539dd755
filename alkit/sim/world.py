"""The virtual pool: frame id -> (image, boxes, metadata), generated on demand.

A pool of millions of frames costs no disk: each frame is rendered from (world seed, frame
id) when asked for, bit-identical on every call and in every process.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import OrderedDict

import numpy as np
import pandas as pd

from alkit.data.frames import Frame, FrameMeta
from alkit.errors import DataError
from alkit.sim.config import WorldConfig
from alkit.sim.lighting import Camera, road_layout
from alkit.sim.render import SessionScene, render, session_scene
from alkit.sim.scene import (
    SessionConditions,
    plan_session,
    session_conditions,
    time_of_day_quantile,
)

SKY_NIGHT_FLOOR = 0.004


class World:
    """A synthetic driving world.

    Example:
        >>> world = World(experiment_world("quick", seed=0))
        >>> frame = world.frame(123)            # Frame: (96, 160, 3) uint8 image + boxes
        >>> world.manifest(world.segment_frame_ids("pool")).time_of_day.value_counts()
    """

    def __init__(self, config: WorldConfig, cache_sessions: int = 32, cache_mib: float = 128):
        """``cache_sessions``: session scenes kept; ``cache_mib``: rendered frames kept (least
        recently used go first), so a frame the oracle labels, a learner trains on and a
        test set holds is rendered once in a process; 0 keeps none."""
        self.config = config
        self.camera = Camera(config.image_height, config.image_width)
        self._starts = np.cumsum([0] + [s.n_sessions for s in config.segments]).tolist()
        self._cache_size = cache_sessions
        self._scenes: OrderedDict[int, SessionScene] = OrderedDict()
        self._grid = None
        self._cache_bytes = int(cache_mib * 2**20)
        self._frames: OrderedDict[int, Frame] = OrderedDict()
        self._frames_bytes = 0

    def __getstate__(self) -> dict:  # caches stay behind when sent to DataLoader workers
        return {"config": self.config, "cache_sessions": self._cache_size,
                "cache_mib": self._cache_bytes / 2**20}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"], state["cache_sessions"], state.get("cache_mib", 128))

    def __len__(self) -> int:
        return self.config.n_frames

    def __repr__(self) -> str:
        c = self.config
        segs = ", ".join(f"{s.name}={s.n_sessions * c.frames_per_session}" for s in c.segments)
        return f"World(seed={c.seed}, {c.image_height}x{c.image_width}, frames: {segs})"

    # ids -------------------------------------------------------------------------------
    def locate(self, frame_id: int) -> tuple[int, int, int]:
        """``(session id, frame index in session, segment index)`` of a frame id."""
        fid = int(frame_id)
        if fid < 0 or fid >= self.config.n_frames:
            raise DataError(
                f"frame id {frame_id} is not in this world (valid ids: 0..{len(self) - 1})"
            )
        session, index = divmod(fid, self.config.frames_per_session)
        return session, index, bisect.bisect_right(self._starts, session) - 1

    def segment_frame_ids(self, name: str) -> range:
        """The frame ids of a segment, e.g. ``"pool"``."""
        for i, seg in enumerate(self.config.segments):
            if seg.name == name:
                fps = self.config.frames_per_session
                return range(self._starts[i] * fps, self._starts[i + 1] * fps)
        names = [s.name for s in self.config.segments]
        raise KeyError(f"no segment {name!r} in this world; segments: {names}")

    # metadata --------------------------------------------------------------------------
    def _conditions(self, session: int, seg_index: int) -> SessionConditions:
        seg = self.config.segments[seg_index]
        rng = np.random.default_rng((self.config.seed, session))
        quantile = time_of_day_quantile(self.config, session, seg_index)
        return session_conditions(rng, seg.time_of_day, seg.route, self.config.weather, quantile)

    def meta(self, frame_id: int) -> FrameMeta:
        session, index, seg = self.locate(frame_id)
        return self._meta(session, index, seg, self._conditions(session, seg))

    def _meta(self, session, index, seg, cond: SessionConditions) -> FrameMeta:
        cell_step = int(cond.ego_speed * index // 100.0)  # a new map tile every 100 m
        return FrameMeta(
            session_id=session,
            frame_index=index,
            time_of_day=cond.time_of_day,
            weather=cond.weather,
            route=cond.route,
            geo_cell=f"{cond.geo_x:02d}-{(cond.geo_y + cell_step) % 64:02d}",
            segment=self.config.segments[seg].name,
        )

    def manifest(self, frame_ids=None) -> pd.DataFrame:
        """Metadata table: ``frame_id`` + ``alkit.sim.META_FIELDS``, one row per frame.

        Costs one small draw per session, no rendering: fine for millions of frames.
        """
        ids = np.arange(len(self)) if frame_ids is None else np.asarray(frame_ids, np.int64)
        fps = self.config.frames_per_session
        rows = []
        cache: dict[int, tuple[int, SessionConditions]] = {}
        for fid in ids.tolist():
            session, index, seg = self.locate(fid)
            if session not in cache:
                cache[session] = (seg, self._conditions(session, seg))
            seg, cond = cache[session]
            rows.append({"frame_id": fid, **self._meta(session, index, seg, cond).as_dict()})
        df = pd.DataFrame(rows, columns=["frame_id", *FrameMeta.__dataclass_fields__])
        assert fps > 0
        return df.astype({"frame_id": "int64", "session_id": "int64", "frame_index": "int64"})

    # pixels ----------------------------------------------------------------------------
    def _scene(self, session: int, seg: int) -> SessionScene:
        scene = self._scenes.get(session)
        if scene is not None:
            self._scenes.move_to_end(session)
            return scene
        if self._grid is None:
            self._grid = self.camera.ground_grid()
        plan = plan_session(self.config, session, seg)
        cond = plan.conditions
        rows = np.linspace(1.0, 0.55, self.camera.height, dtype=np.float32)[:, None, None]
        sky = np.asarray(cond.sky_tint, np.float32) * rows  # (H, 1, 3) brighter at the top
        if cond.time_of_day == "night":
            sky = np.maximum(sky, SKY_NIGHT_FLOOR)
        if cond.weather != "clear":
            sky = 0.5 * sky + 0.5 * sky.mean()
        layout = road_layout(self.camera, cond, self._grid, sky)
        scene = session_scene(self.camera, self._grid, plan, layout)
        self._scenes[session] = scene
        if len(self._scenes) > self._cache_size:
            self._scenes.popitem(last=False)
        return scene

    def frame(self, frame_id: int) -> Frame:
        """Render a frame: ``(H, W, 3)`` uint8 image, boxes ``(N, 4)`` xywh px, labels ``(N,)``.

        A frame rendered before is served from the cache (copies of its arrays: the caller
        may change them)."""
        cached = self._frames.get(int(frame_id))
        if cached is not None:
            self._frames.move_to_end(int(frame_id))
            return _copy(cached)
        frame = self._render(frame_id)
        if self._cache_bytes > 0:
            self._frames[frame.frame_id] = _copy(frame)
            self._frames_bytes += frame.image.nbytes
            while self._frames_bytes > self._cache_bytes and self._frames:
                self._frames_bytes -= self._frames.popitem(last=False)[1].image.nbytes
        return frame

    def _render(self, frame_id: int) -> Frame:
        session, index, seg = self.locate(frame_id)
        scene = self._scene(session, seg)
        rng = np.random.default_rng((self.config.seed, session, index, 0x5EED))
        out = render(self.camera, scene, index, rng)
        return Frame(
            frame_id=int(frame_id),
            image=out.image,
            boxes=out.boxes,
            labels=out.labels,
            meta=self._meta(session, index, seg, scene.plan.conditions),
            attributes=out.tags,
            tracks=out.tracks,
        )

    def image(self, frame_id: int) -> np.ndarray:
        """Only the pixels, ``(H, W, 3)`` uint8: those of ``frame(frame_id)``, rendered
        without working out its boxes (faster; what scoring a pool needs), or the cached
        frame's."""
        cached = self._frames.get(int(frame_id))
        if cached is not None:
            return cached.image.copy()
        session, index, seg = self.locate(frame_id)
        rng = np.random.default_rng((self.config.seed, session, index, 0x5EED))
        return render(self.camera, self._scene(session, seg), index, rng, labels=False).image


def _copy(frame: Frame) -> Frame:
    """The frame with its own copies of its arrays (image, boxes, labels, tracks)."""
    return dataclasses.replace(
        frame,
        image=frame.image.copy(),
        boxes=frame.boxes.copy(),
        labels=frame.labels.copy(),
        tracks=None if frame.tracks is None else frame.tracks.copy(),
    )
