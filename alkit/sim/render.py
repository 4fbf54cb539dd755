"""Compose one frame: road, light, objects far to near, fog, rain, glare, sensor noise.

Labels follow what a labeller could see: a box is kept when at least a quarter of the
object is visible (occlusion), a third of it lies inside the image (truncation), its sides
are at least 2 px (x profile scale), and it stands out from its background by a few grey
levels (objects lost in the dark are not labelled; dark-clothed people near lights are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alkit.sim.lighting import (
    FOG_DISTANCE_M,
    LAMP_POOL_SIGMA_M,
    LIGHT_LEVELS,
    WEATHER_LIGHT,
    Camera,
    RoadLayout,
    headlight,
    lamp_pool,
)
from alkit.sim.objects import DRAWERS
from alkit.sim.scene import LAMP, MAX_DEPTH_M, MIN_DEPTH_M, ROAD_SIGN, SessionPlan

MIN_VISIBLE_FRACTION = 0.25
MIN_INSIDE_FRACTION = 0.35
MIN_CONTRAST = 0.03  # in display units (0..1), about 8 grey levels
LOW_CONTRAST = 0.10


@dataclass(frozen=True)
class SessionScene:
    """Everything about a session that does not change from frame to frame."""

    plan: SessionPlan
    layout: RoadLayout
    ground: np.ndarray  # (H, W) bool
    x: np.ndarray  # (H, W) metres
    z: np.ndarray  # (H, W) metres, inf in the sky
    base_light: np.ndarray  # (H, W) ambient + headlights on the road; 1 in the sky
    z_road: np.ndarray  # (H, W) road distance with 0 in the sky (safe for arithmetic)


@dataclass(frozen=True)
class RenderedFrame:
    """Pixels and labels. ``boxes`` ``(N, 4)`` xywh px; ``labels`` ``(N,)``; ``tags`` per box;
    ``tracks`` ``(N,)``: which object of the drive each box is (``object * 8 + part``), the
    same in every frame of the session (distinct objects, not boxes, measure a test set)."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    tags: tuple[tuple[str, ...], ...]
    tracks: np.ndarray


def session_scene(cam: Camera, grid, plan: SessionPlan, layout: RoadLayout) -> SessionScene:
    ground, x, z = grid
    lv = LIGHT_LEVELS[plan.conditions.time_of_day]
    ambient = lv["ambient"] * WEATHER_LIGHT[plan.conditions.weather]
    light = np.where(ground, ambient + headlight(x, z, lv["headlight"]), 1.0).astype(np.float32)
    return SessionScene(plan, layout, ground, x, z, light, np.where(ground, z, 0.0))


def _object_light(xs: np.ndarray, zs: np.ndarray, kinds: np.ndarray, lamps, lv, ambient):
    """Light falling on each object ``(K,)``: ambient, half the low beam, street lamps.

    Road signs are retro-reflective: they shine back the headlights.
    """
    beam = headlight(xs, zs, lv["headlight"])  # (K,)
    light = ambient + 0.5 * beam + lamp_pool(xs, zs, lamps, lv["lamp"] * 1.2)
    return light + np.where(kinds == ROAD_SIGN, 2.5 * headlight(xs, zs, 1.0), 0.0)


def render(
    cam: Camera, scene: SessionScene, t: int, rng: np.random.Generator, labels: bool = True
) -> RenderedFrame:
    """Render frame ``t`` of a session. ``rng`` drives only the sensor noise and rain.

    ``labels=False`` renders the same pixels without working out the boxes (which parts are
    visible and stand out): the frame has no boxes, for scoring, which needs only pixels.
    """
    plan, cond = scene.plan, scene.plan.conditions
    lv = LIGHT_LEVELS[cond.time_of_day]
    night = cond.time_of_day != "day"
    ambient = lv["ambient"] * WEATHER_LIGHT[cond.weather]
    H, W = cam.height, cam.width

    # road surface with lane dashes that roll towards the camera
    travelled = cond.ego_speed * t
    albedo = scene.layout.albedo.copy()  # (H, W, 3)
    dashes = scene.layout.dash_index  # (D,) flat pixel indices of the dashed lines
    dash_on = np.mod(scene.z_road.reshape(-1)[dashes] + travelled, 9.0) < 3.5  # (D,)
    albedo.reshape(-1, 3)[dashes[dash_on]] = 0.85

    xs, zs = plan.positions(t)  # (K,), (K,)
    lamp_sel = (plan.kind == LAMP) & (zs > -8.0) & (zs < 70.0)
    lamps = np.stack([xs[lamp_sel], zs[lamp_sel]], axis=1)  # (L, 2)
    light = scene.base_light.copy()  # (H, W)
    if len(lamps) and lv["lamp"] > 0:
        reach = 3.0 * LAMP_POOL_SIGMA_M  # rows whose road distance is near some lamp
        row_z = scene.z_road[:, 0]
        rows = scene.ground[:, 0] & (np.abs(row_z[:, None] - lamps[None, :, 1]) < reach).any(1)
        light[rows] += lamp_pool(scene.x[rows], scene.z[rows], lamps, lv["lamp"])
    radiance = albedo * light[..., None]  # (H, W, 3)
    depth = scene.z.copy()  # (H, W)
    ids = np.full((H, W), -1, np.int32) if labels else None  # (H, W) which part owns a pixel

    half_fov = W / 2 / cam.focal
    visible = (zs > MIN_DEPTH_M) & (zs < MAX_DEPTH_M)
    visible &= np.abs(xs) - plan.width < zs * half_fov + 2.0
    visible &= cam.focal * np.maximum(plan.height, plan.width) / np.maximum(zs, 1.0) >= 1.5 * H / 96
    order = np.flatnonzero(visible)[np.argsort(-zs[visible], kind="stable")]  # far to near
    obj_lights = _object_light(xs[order], zs[order], plan.kind[order], lamps, lv, ambient)
    parts: list[dict] = []
    lights: list[tuple] = []
    for k, obj_light in zip(order, obj_lights, strict=True):
        sprite, labelled = DRAWERS[int(plan.kind[k])](cam, plan, k, xs[k], zs[k], t, night)
        if sprite.empty:
            continue
        rad = sprite.albedo * obj_light  # (h, w, 3), float64 (obj_light is)
        if sprite.emit is not None:
            rad += sprite.emit
        sl = np.s_[sprite.iy0 : sprite.iy1, sprite.ix0 : sprite.ix1]
        win, painted = radiance[sl], sprite.part > -2  # (h, w, 3), (h, w)
        for p, (cls, tags) in labelled.items() if labels else ():
            pm = sprite.part == p
            drawn = int(np.count_nonzero(pm))
            if drawn == 0:
                continue
            # how much the object changes the pixels it covers, in display units
            before = np.sqrt(np.minimum(np.maximum(lv["gain"] * win[pm], 0.0), 1.0))  # (n, 3)
            after = np.sqrt(np.minimum(np.maximum(lv["gain"] * rad[pm], 0.0), 1.0))  # (n, 3)
            diff = np.abs(after - before)  # (n, 3)
            contrast = float(np.add.reduce(diff, axis=None) / diff.size)  # its mean
            gid = len(parts)
            ids[sl][pm] = gid
            parts.append({"cls": cls, "tags": tags, "box": sprite.extents[p], "drawn": drawn,
                          "contrast": contrast, "track": int(k) * 8 + int(p)})  # fmt: skip
        if labels and sprite.unlabelled:
            ids[sl][sprite.part == -1] = -1
        np.copyto(win, rad, where=painted[..., None])
        np.copyto(depth[sl], zs[k], where=painted)
        lights.extend(sprite.lights)

    if cond.weather == "fog":
        keep = np.exp(-depth / FOG_DISTANCE_M)[..., None]  # (H, W, 1)
        fog = np.float32(0.75 * ambient + 0.02)
        radiance = radiance * keep + fog * (1.0 - keep)
    for lx, ly, r, color in lights:  # glare halos around bright lights
        r = max(r, 1.0)
        y0, y1 = max(int(ly - 3 * r), 0), min(int(ly + 3 * r) + 1, H)
        x0, x1 = max(int(lx - 3 * r), 0), min(int(lx + 3 * r) + 1, W)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - ly
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - lx
        halo = np.exp(-(xx * xx + yy * yy) / (2 * r * r))  # (h, w)
        radiance[y0:y1, x0:x1] += halo[..., None] * np.asarray(color, np.float32) * 0.5
    if cond.weather == "rain":
        streaks = rng.random((H // 3 + 1, W)) < 0.012
        streaks = np.repeat(streaks, 3, axis=0)[:H]  # (H, W)
        radiance = 0.85 * radiance + 0.15 * radiance.mean()
        radiance[streaks] += 0.15 * (ambient + 0.05)

    signal = lv["gain"] * radiance  # (H, W, 3)
    sigma = np.sqrt(lv["read_noise"] ** 2 + 0.002 * np.clip(signal, 0, 1))
    signal = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    image = (np.sqrt(np.clip(signal, 0.0, 1.0)) * 255.0 + 0.5).astype(np.uint8)  # (H, W, 3)

    counts = np.bincount(ids.ravel() + 1, minlength=len(parts) + 1)[1:] if labels else []  # (P,)
    boxes, labels, tags_out, tracks = [], [], [], []
    min_side = 2.0 * H / 96.0
    for gid, part in enumerate(parts):
        bx0, by0, bx1, by1 = part["box"]
        amodal = max(bx1 - bx0, 1e-6) * max(by1 - by0, 1e-6)
        cx0, cy0 = max(bx0, 0.0), max(by0, 0.0)
        cx1, cy1 = min(bx1, float(W)), min(by1, float(H))
        w, h = cx1 - cx0, cy1 - cy0
        if w < min_side or h < min_side or w * h < MIN_INSIDE_FRACTION * amodal:
            continue
        visible_fraction = counts[gid] / part["drawn"]
        if visible_fraction < MIN_VISIBLE_FRACTION or part["contrast"] < MIN_CONTRAST:
            continue
        tags = list(part["tags"])
        tags += ["truncated"] if w * h < 0.95 * amodal else []
        tags += ["occluded"] if visible_fraction < 0.7 else []
        tags += ["low_contrast"] if part["contrast"] < LOW_CONTRAST else []
        boxes.append((cx0, cy0, w, h))
        labels.append(part["cls"])
        tags_out.append(tuple(tags))
        tracks.append(part["track"])
    return RenderedFrame(
        image=image,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        labels=np.asarray(labels, np.int64),
        tags=tuple(tags_out),
        tracks=np.asarray(tracks, np.int64),
    )


__all__ = ["LAMP_POOL_SIGMA_M", "RenderedFrame", "SessionScene", "render", "session_scene"]
