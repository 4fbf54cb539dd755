"""How each kind of object looks: a sprite of shapes in the object's projected box.

Each function paints the object at frame ``t`` and returns the sprite plus its labelled
parts: ``{part: (class index, tags)}``. Part 0 is the object itself; a bicycle's rider is
part 1 and is labelled as a person; poles under lights and signs are unlabelled (-1).
"""

from __future__ import annotations

import math

import numpy as np

from alkit.sim.draw import Sprite
from alkit.sim.lighting import Camera
from alkit.sim.scene import (
    BICYCLE,
    BIN,
    CAMERA_HEIGHT_M,
    CAR,
    LAMP,
    PERSON,
    POLE,
    RACK,
    RARE_CHILD,
    RARE_MOTORCYCLE,
    RARE_RIDER,
    RARE_STILTS,
    RARE_TRAILER,
    RARE_WHEELIE,
    ROAD_SIGN,
    TRAFFIC_LIGHT,
    SessionPlan,
)

Parts = dict[int, tuple[int, tuple[str, ...]]]
LOD_PX = 7.0  # objects shorter than this (px) are drawn with fewer shapes
SKIN = np.array([0.8, 0.62, 0.5], np.float32)
DARK = np.full(3, 0.04, np.float32)


def _screen_box(cam: Camera, x: float, z: float, lift: float, w: float, h: float):
    return cam.project(x, z, lift, w, h)


def _sprite(cam: Camera, box, pad_below: float = 0.0, pad: float = 1.0) -> Sprite:
    x0, y0, x1, y1 = box
    return Sprite(x0 - pad, y0 - pad, x1 + pad, y1 + pad_below + pad, cam.height, cam.width)


def draw_car(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    mode, lit = int(plan.style[k, 0]), plan.style[k, 3]
    box = _screen_box(cam, x, z, 0.0, plan.width[k], plan.height[k])
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    trailer = bool(plan.flags[k] & RARE_TRAILER)
    s = _sprite(cam, box, pad_below=0.25 * bh if trailer else 0.0)
    if s.empty:
        return s, {}
    c = plan.color[k]
    window = np.array([0.12, 0.14, 0.18], np.float32)
    u = lambda a: x0 + a * bw  # noqa: E731
    v = lambda a: y0 + a * bh  # noqa: E731
    if bh < LOD_PX:  # far away: body and cabin
        s.rect(u(0.0), v(0.4), u(1.0), v(1.0), c)
        s.rect(u(0.15), v(0.0), u(0.85), v(0.45), window)
        if lit and night:
            s.rect(u(0.0), v(0.5), u(1.0), v(0.6), c, emit=np.array([2.0, 0.2, 0.1] if lit == 1
                   else [2.0, 2.0, 1.6], np.float32))  # fmt: skip
        return s, {0: (CAR, ())}
    if mode == 2 and bw > 1.8 * bh:  # parked, side-on
        s.rect(u(0.0), v(0.42), u(1.0), v(0.86), c)
        s.rect(u(0.22), v(0.02), u(0.74), v(0.45), c)
        s.rect(u(0.27), v(0.08), u(0.47), v(0.40), window)
        s.rect(u(0.50), v(0.08), u(0.70), v(0.40), window)
        for a in (0.2, 0.8):
            s.ellipse(u(a), v(0.84), 0.09 * bw, 0.16 * bh, DARK)
    else:
        s.rect(u(0.0), v(0.42), u(1.0), v(0.88), c)
        s.rect(u(0.1), v(0.0), u(0.9), v(0.46), c)
        s.rect(u(0.16), v(0.07), u(0.84), v(0.40), window)
        s.rect(u(0.04), v(0.84), u(0.22), v(1.0), DARK)
        s.rect(u(0.78), v(0.84), u(0.96), v(1.0), DARK)
        s.rect(u(0.4), v(0.62), u(0.6), v(0.72), np.full(3, 0.85, np.float32))
        if lit == 1.0:  # rear lights, bright when it is dark
            red = np.array([0.7, 0.05, 0.05], np.float32)
            glow = red * (2.5 if night else 0.2)
            s.rect(u(0.03), v(0.47), u(0.2), v(0.58), red, emit=glow)
            s.rect(u(0.8), v(0.47), u(0.97), v(0.58), red, emit=glow)
            if night:
                s.light(u(0.11), v(0.52), 0.12 * bw, (0.8, 0.05, 0.05))
                s.light(u(0.89), v(0.52), 0.12 * bw, (0.8, 0.05, 0.05))
        elif lit == 2.0:  # oncoming headlights: glare at night
            white = np.array([0.9, 0.9, 0.8], np.float32)
            glow = white * (4.0 if night else 0.3)
            s.ellipse(u(0.13), v(0.55), 0.08 * bw, 0.06 * bh, white, emit=glow)
            s.ellipse(u(0.87), v(0.55), 0.08 * bw, 0.06 * bh, white, emit=glow)
            if night:
                s.light(u(0.13), v(0.55), 0.15 * bw, (1.2, 1.1, 0.9))
                s.light(u(0.87), v(0.55), 0.15 * bw, (1.2, 1.1, 0.9))
    if trailer:  # a towed trailer, nearer to us: partly hides the car; not a car itself
        s.rect(u(0.08), v(0.55), u(0.92), v(1.2), np.full(3, 0.35, np.float32), part=-1)
    return s, {0: (CAR, ("trailer",) if trailer else ())}


def _person_shapes(s: Sprite, x0, y0, bw, bh, shirt, pants, swing, part, stilts=False):
    body_h = bh * (0.62 if stilts else 1.0)
    u = lambda a: x0 + a * bw  # noqa: E731
    v = lambda a: y0 + a * body_h  # noqa: E731
    s.ellipse(u(0.5), v(0.07), 0.2 * bw, 0.07 * body_h, SKIN * shirt[1] / max(shirt[1], 0.3),
              part=part)  # fmt: skip
    s.rect(u(0.15), v(0.14), u(0.85), v(0.53), shirt, part=part)
    s.segment(u(0.12), v(0.17), u(0.06 - swing / 2), v(0.48), 0.14 * bw, shirt, part=part)
    s.segment(u(0.88), v(0.17), u(0.94 + swing / 2), v(0.48), 0.14 * bw, shirt, part=part)
    pants_c = np.full(3, pants, np.float32)
    s.segment(u(0.36), v(0.52), u(0.32 + swing), v(0.99), 0.24 * bw, pants_c, part=part)
    s.segment(u(0.64), v(0.52), u(0.68 - swing), v(0.99), 0.24 * bw, pants_c, part=part)
    if stilts:
        grey = np.full(3, 0.5, np.float32)
        s.segment(u(0.32 + swing), y0 + body_h, u(0.32 + swing), y0 + bh, 0.1 * bw, grey, part)
        s.segment(u(0.68 - swing), y0 + body_h, u(0.68 - swing), y0 + bh, 0.1 * bw, grey, part)


def draw_person(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    box = _screen_box(cam, x, z, 0.0, plan.width[k], plan.height[k])
    s = _sprite(cam, box)
    if s.empty:
        return s, {}
    x0, y0, x1, y1 = box
    if y1 - y0 < LOD_PX:  # far away: a head and a body are all a camera resolves
        shirt = plan.color[k]
        s.rect(x0, y0 + 0.15 * (y1 - y0), x1, y1, 0.5 * (shirt + plan.style[k, 1]))
        s.rect(x0 + 0.25 * (x1 - x0), y0, x1 - 0.25 * (x1 - x0), y0 + 0.15 * (y1 - y0), SKIN)
        return s, {0: (PERSON, ("dark_clothing",) if shirt.mean() < 0.15 else ())}
    moving = plan.vx[k] != 0.0 or plan.vz[k] != 0.0
    swing = 0.14 * math.sin(2 * math.pi * (plan.style[k, 2] + 0.09 * t)) if moving else 0.0
    stilts = bool(plan.flags[k] & RARE_STILTS)
    shirt = plan.color[k]
    _person_shapes(s, x0, y0, x1 - x0, y1 - y0, shirt, plan.style[k, 1], swing, 0, stilts)
    tags = ["dark_clothing"] if shirt.mean() < 0.15 else []
    tags += ["stilts"] if stilts else []
    tags += ["child"] if plan.flags[k] & RARE_CHILD else []
    return s, {0: (PERSON, tuple(tags))}


def draw_bicycle(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    side_view, light = plan.style[k, 0] == 1.0, plan.style[k, 3] == 1.0
    flags = int(plan.flags[k])
    rider, motor, wheelie = flags & RARE_RIDER, flags & RARE_MOTORCYCLE, flags & RARE_WHEELIE
    box = _screen_box(cam, x, z, 0.0, plan.width[k], plan.height[k])
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    # room above for a rider (0.9 m) and for a raised front wheel
    s = Sprite(x0 - 0.3 * bw - 1, y0 - 1.0 * bh - 1, x1 + 1, y1 + 1, cam.height, cam.width)
    if s.empty:
        return s, {}
    c = plan.color[k]
    thick = max(0.05 * bh, 0.7)
    tags: list[str] = ["motorcycle"] if motor else []
    if side_view:
        pts = {  # (u, v) in the bicycle's box
            "rear": (0.2, 0.7), "front": (0.8, 0.7), "crank": (0.45, 0.72),
            "seat": (0.38, 0.28), "head": (0.72, 0.28), "bar": (0.7, 0.12),
        }  # fmt: skip
        cos_a, sin_a = (math.cos(0.45), math.sin(0.45)) if wheelie else (1.0, 0.0)

        def p(name):
            du, dv = pts[name][0] - 0.2, pts[name][1] - 0.7
            ru, rv = du * cos_a + dv * sin_a * bh / bw, -du * sin_a * bw / bh + dv * cos_a
            return x0 + (0.2 + ru) * bw, y0 + (0.7 + rv) * bh

        r_w = 0.3 * bh
        for hub in ("rear", "front"):
            hx, hy = p(hub)
            s.ring(hx, hy, r_w, r_w, thick * (2.0 if motor else 1.0), DARK)
        if motor:
            (ax, ay), (bx, by) = p("seat"), p("crank")
            s.ellipse((ax + bx) / 2 + 0.1 * bw, (ay + by) / 2, 0.22 * bw, 0.2 * bh, c)
        for a, b in (("rear", "crank"), ("crank", "seat"), ("seat", "rear"), ("seat", "head"),
                     ("head", "crank"), ("head", "front"), ("head", "bar")):  # fmt: skip
            s.segment(*p(a), *p(b), thick, c)
        if wheelie:
            tags.append("wheelie")
        if light and night:
            fx, fy = p("bar")
            s.ellipse(fx, fy + 0.05 * bh, 0.6 * thick, 0.6 * thick, c, emit=np.full(3, 3.0))
            s.light(fx, fy, 0.15 * bh, (1.2, 1.2, 1.0))
        seat, pedal, bar = p("seat"), p("crank"), p("bar")
    else:  # seen from behind: a narrow wheel, a handlebar
        cx = x0 + 0.5 * bw
        s.ring(cx, y0 + 0.7 * bh, 0.1 * bw, 0.3 * bh, thick * (2.0 if motor else 1.2), DARK)
        s.segment(cx, y0 + 0.4 * bh, cx, y0 + 0.15 * bh, thick, c)
        s.segment(x0 + 0.05 * bw, y0 + 0.13 * bh, x1 - 0.05 * bw, y0 + 0.13 * bh, thick, c)
        if light and night:
            red = np.array([2.5, 0.1, 0.1], np.float32)
            s.ellipse(cx, y0 + 0.42 * bh, 0.08 * bw, 0.04 * bh, c, emit=red)
            s.light(cx, y0 + 0.42 * bh, 0.12 * bh, (0.9, 0.05, 0.05))
        seat, pedal, bar = (cx, y0 + 0.3 * bh), (cx, y0 + 0.8 * bh), (cx, y0 + 0.13 * bh)
    if night and not light:
        tags.append("unlit")
    parts: Parts = {0: (BICYCLE, tuple(tags))}
    if rider:
        shirt = np.clip(plan.style[k, 1] * np.array([1.1, 1.0, 0.9]), 0, 1).astype(np.float32)
        unit = bh / 1.1  # px per metre
        shoulder = (seat[0] + 0.15 * (bar[0] - seat[0]), seat[1] - 0.55 * unit)
        s.segment(*seat, *shoulder, 0.3 * unit, shirt, part=1)
        s.ellipse(shoulder[0] + 0.03 * unit, shoulder[1] - 0.14 * unit, 0.11 * unit,
                  0.12 * unit, SKIN * 0.8, part=1)  # fmt: skip
        s.segment(*shoulder, *bar, 0.09 * unit, shirt, part=1)
        s.segment(*seat, *pedal, 0.14 * unit, np.full(3, 0.15, np.float32), part=1)
        parts[1] = (PERSON, ("rider", "dark_clothing") if shirt.mean() < 0.15 else ("rider",))
    return s, parts


def _on_pole(cam, plan: SessionPlan, k, x, z, pole_width: float, pole_grey: float):
    """A sprite for an object mounted ``lift`` metres up a pole; the pole is unlabelled."""
    x0, y0, x1, y1 = _screen_box(cam, x, z, plan.lift[k], plan.width[k], plan.height[k])
    ground = cam.project(x, z, 0.0, 0.1, 0.1)[3]
    s = Sprite(x0 - 1, y0 - 1, x1 + 1, ground + 1, cam.height, cam.width)
    if not s.empty:
        half = pole_width * (x1 - x0) / 2
        mid = (x0 + x1) / 2
        s.rect(mid - half, y1, mid + half, ground, np.full(3, pole_grey, np.float32), part=-1)
    return s, (x0, y0, x1, y1)


def draw_traffic_light(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    s, (x0, y0, x1, y1) = _on_pole(cam, plan, k, x, z, 0.2, 0.2)
    if s.empty:
        return s, {}
    bw, bh = x1 - x0, y1 - y0
    s.rect(x0, y0, x1, y1, plan.color[k])
    state = int(plan.style[k, 0])
    colors = ([2.2, 0.15, 0.1], [2.2, 1.5, 0.1], [0.2, 2.2, 0.9])
    for i, vy in enumerate((0.18, 0.5, 0.82)):
        on = i == state
        emit = np.asarray(colors[i], np.float32) * (1.0 if night else 0.5) if on else None
        col = np.asarray(colors[i], np.float32) / 2.5 if on else np.full(3, 0.12, np.float32)
        s.ellipse(x0 + 0.5 * bw, y0 + vy * bh, 0.3 * bw, 0.12 * bh, col, emit=emit)
        if on and night:
            s.light(x0 + 0.5 * bw, y0 + vy * bh, 0.6 * bw, tuple(np.asarray(colors[i]) * 0.5))
    return s, {0: (TRAFFIC_LIGHT, ())}


def draw_road_sign(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    s, (x0, y0, x1, y1) = _on_pole(cam, plan, k, x, z, 0.1, 0.4)
    if s.empty:
        return s, {}
    bw, bh = x1 - x0, y1 - y0
    shape = int(plan.style[k, 0])
    red, white = np.array([0.8, 0.08, 0.08], np.float32), np.full(3, 0.9, np.float32)
    blue, green = np.array([0.1, 0.25, 0.8], np.float32), np.array([0.05, 0.45, 0.2], np.float32)
    cx, cy = x0 + bw / 2, y0 + bh / 2
    if shape == 0:
        s.ellipse(cx, cy, bw / 2, bh / 2, red)
        s.ellipse(cx, cy, 0.34 * bw, 0.34 * bh, white)
    elif shape == 1:
        s.triangle(x0, y1, x1, y1, cx, y0, red)
        s.triangle(x0 + 0.2 * bw, y1 - 0.12 * bh, x1 - 0.2 * bw, y1 - 0.12 * bh, cx,
                   y0 + 0.35 * bh, white)  # fmt: skip
    elif shape == 2:
        s.rect(x0, y0, x1, y1, blue)
        s.rect(x0 + 0.3 * bw, y0 + 0.2 * bh, x1 - 0.3 * bw, y1 - 0.2 * bh, white)
    else:
        s.rect(x0, y0, x1, y1, green)
        for a in (0.25, 0.5, 0.75):
            s.rect(x0 + 0.1 * bw, y0 + (a - 0.06) * bh, x1 - 0.15 * bw, y0 + (a + 0.06) * bh,
                   white)  # fmt: skip
    return s, {0: (ROAD_SIGN, ())}


def draw_clutter(cam, plan: SessionPlan, k, x, z, t, night) -> tuple[Sprite, Parts]:
    """Hard negatives: poles and bins (person-like), bike racks (wheel-like), street lamps."""
    kind = int(plan.kind[k])
    box = _screen_box(cam, x, z, 0.0, plan.width[k], plan.height[k])
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    s = _sprite(cam, box)
    if s.empty:
        return s, {}
    c = plan.color[k]
    if kind == POLE:
        s.rect(x0, y0, x1, y1, c, part=-1)
        s.rect(x0 - 0.3 * bw, y0, x1 + 0.3 * bw, y0 + 0.05 * bh, c * 0.7, part=-1)
    elif kind == BIN:
        s.rect(x0 + 0.05 * bw, y0 + 0.12 * bh, x1 - 0.05 * bw, y1, c, part=-1)
        s.rect(x0, y0, x1, y0 + 0.14 * bh, c * 0.6, part=-1)
    elif kind == RACK:
        loops = int(plan.style[k, 0])
        for i in range(loops):
            cx = x0 + (i + 0.5) * bw / loops
            s.ring(cx, y0 + 0.55 * bh, 0.35 * bw / loops, 0.5 * bh, max(0.08 * bh, 0.7), c,
                   part=-1, upper_only=True)  # fmt: skip
            s.rect(cx - 0.35 * bw / loops, y0 + 0.55 * bh, cx - 0.3 * bw / loops, y1, c, -1)
            s.rect(cx + 0.3 * bw / loops, y0 + 0.55 * bh, cx + 0.35 * bw / loops, y1, c, -1)
    elif kind == LAMP:
        s.rect(x0, y0, x1, y1, c, part=-1)
        if night:
            s.ellipse((x0 + x1) / 2, y0, 2 * bw, 0.02 * bh, c, part=-1, emit=np.full(3, 3.0))
            s.light((x0 + x1) / 2, y0, 0.06 * bh, (1.5, 1.3, 0.9))
    return s, {}


DRAWERS = {
    CAR: draw_car,
    PERSON: draw_person,
    BICYCLE: draw_bicycle,
    TRAFFIC_LIGHT: draw_traffic_light,
    ROAD_SIGN: draw_road_sign,
    POLE: draw_clutter,
    BIN: draw_clutter,
    RACK: draw_clutter,
    LAMP: draw_clutter,
}

__all__ = ["CAMERA_HEIGHT_M", "DRAWERS", "Parts"]
