"""A driving session's plan: its conditions and the objects along its route.

Geometry is a flat road seen by a pinhole camera 1.5 m above it. World coordinates are
metres: ``X`` to the right, ``Z`` forward. The ego car drives at ``ego_speed`` metres per
frame; an object at ``(x0, z0)`` with velocity ``(vx, vz)`` sits at
``X = x0 + vx * t``, ``Z = z0 + (vz - ego_speed) * t`` relative to the camera at frame ``t``.
Everything is drawn from ``numpy.random.default_rng((world seed, session id))``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from alkit.sim.config import ROUTES, TIMES_OF_DAY, WEATHERS, WorldConfig

CAMERA_HEIGHT_M = 1.5
MIN_DEPTH_M = 2.0
MAX_DEPTH_M = 80.0

# Object kinds. The first five are the labelled classes (same order as alkit.CLASSES);
# the rest are hard negatives that look like people or bicycles but are not.
CAR, BICYCLE, PERSON, TRAFFIC_LIGHT, ROAD_SIGN, POLE, BIN, RACK, LAMP = range(9)
KIND_NAMES = (
    "car",
    "bicycle",
    "person",
    "traffic_light",
    "road_sign",
    "pole",
    "bin",
    "rack",
    "lamp",
)

#: Objects per 100 m of road, by route. Columns follow the kinds above (LAMP: spacing instead).
DENSITY_PER_100M: dict[str, dict[int, float]] = {
    "highway": {CAR: 9.0, BICYCLE: 0.3, PERSON: 0.3, TRAFFIC_LIGHT: 0.0, ROAD_SIGN: 3.0,
                POLE: 2.0, BIN: 0.0, RACK: 0.0},
    "urban": {CAR: 7.0, BICYCLE: 5.0, PERSON: 12.0, TRAFFIC_LIGHT: 3.0, ROAD_SIGN: 4.0,
              POLE: 5.0, BIN: 4.0, RACK: 1.5},
    "suburban": {CAR: 5.0, BICYCLE: 2.5, PERSON: 4.0, TRAFFIC_LIGHT: 0.8, ROAD_SIGN: 3.0,
                 POLE: 3.0, BIN: 2.0, RACK: 0.5},
}  # fmt: skip

#: Street-lamp spacing in metres by route (0: no lamps).
LAMP_SPACING_M = {"highway": 0.0, "urban": 25.0, "suburban": 40.0}
EGO_SPEED_M_PER_FRAME = {"highway": (1.8, 2.6), "urban": (0.5, 1.0), "suburban": (0.8, 1.4)}


@dataclass(frozen=True)
class SessionConditions:
    """Conditions that hold for a whole drive."""

    time_of_day: str
    weather: str
    route: str
    geo_x: int
    geo_y: int
    lanes: int
    ego_speed: float
    road_half_width: float
    lane_width: float
    sidewalk_width: float
    lamp_spacing: float
    lamp_offset: float
    sky_tint: tuple[float, float, float]


@dataclass(frozen=True)
class SessionPlan:
    """A session's conditions and objects (``K`` of them) as parallel arrays.

    ``kind`` ``(K,)`` int; ``x0, z0, vx, vz`` ``(K,)`` float metres and metres/frame;
    ``width, height, lift`` ``(K,)`` float metres (lift: height of the object's bottom above
    the road); ``color`` ``(K, 3)`` albedo in [0, 1]; ``style`` ``(K, 4)`` float kind-specific
    draws (variant, secondary albedo, phase, light); ``flags`` ``(K,)`` int bit set of rare
    poses (see ``RARE_*``).
    """

    session_id: int
    segment: str
    conditions: SessionConditions
    kind: np.ndarray
    x0: np.ndarray
    z0: np.ndarray
    vx: np.ndarray
    vz: np.ndarray
    width: np.ndarray
    height: np.ndarray
    lift: np.ndarray
    color: np.ndarray
    style: np.ndarray
    flags: np.ndarray

    def positions(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Z)`` of every object at frame ``t``, each ``(K,)`` metres."""
        ego = self.conditions.ego_speed
        return self.x0 + self.vx * t, self.z0 + (self.vz - ego) * t


RARE_WHEELIE = 1  # bicycle on its back wheel
RARE_STILTS = 2  # person on stilts: much taller box
RARE_TRAILER = 4  # car towing a trailer (the trailer is not a car)
RARE_CHILD = 8  # small person
RARE_MOTORCYCLE = 16  # bicycle class, motorised
RARE_RIDER = 32  # bicycle with a rider (the rider is labelled as a person)


def _choice(rng: np.random.Generator, names: tuple[str, ...], probs) -> str:
    return names[int(rng.choice(len(names), p=np.asarray(probs, dtype=float)))]


@functools.lru_cache(maxsize=64)
def _segment_strata(seed: int, segment_index: int, n_sessions: int) -> np.ndarray:
    """A seeded permutation of a segment's sessions, ``(n,)``: their time-of-day strata."""
    return np.random.default_rng((seed, 7919, segment_index)).permutation(n_sessions)


def time_of_day_quantile(config: WorldConfig, session_id: int, segment_index: int) -> float:
    """Where a session falls in its segment's time-of-day mix, in (0, 1).

    Stratified rather than drawn, so a segment of n sessions holds each time of day in the
    configured share up to one session, for every world seed.
    """
    start = sum(s.n_sessions for s in config.segments[:segment_index])
    n = config.segments[segment_index].n_sessions
    rank = _segment_strata(config.seed, segment_index, n)[session_id - start]
    return (rank + 0.5) / n


def session_conditions(rng: np.random.Generator, tod_probs, route_probs, weather_probs,
                       tod_quantile: float):  # fmt: skip
    """Draw a drive's conditions; the time of day comes from the session's stratum."""
    rng.random()  # keeps the stream's layout stable
    tod = TIMES_OF_DAY[int(np.searchsorted(np.cumsum(tod_probs), tod_quantile, side="right"))]
    route = _choice(rng, ROUTES, route_probs)
    weather = _choice(rng, WEATHERS, weather_probs)
    lanes = {"highway": 3, "urban": 1, "suburban": 1}[route]
    lane_width = float(rng.uniform(3.2, 3.7))
    lo, hi = EGO_SPEED_M_PER_FRAME[route]
    spacing = LAMP_SPACING_M[route]
    tint = {
        "day": (0.55, 0.70, 0.95),
        "dusk": (0.40, 0.26, 0.24),
        "night": (0.006, 0.006, 0.014),
    }[tod]
    return SessionConditions(
        time_of_day=tod,
        weather=weather,
        route=route,
        geo_x=int(rng.integers(0, 64)),
        geo_y=int(rng.integers(0, 64)),
        lanes=lanes,
        ego_speed=float(rng.uniform(lo, hi)),
        road_half_width=(lanes + 0.2) * lane_width,
        lane_width=lane_width,
        sidewalk_width=0.0 if route == "highway" else float(rng.uniform(2.0, 3.5)),
        lamp_spacing=spacing,
        lamp_offset=float(rng.uniform(0, max(spacing, 1.0))),
        sky_tint=tint,
    )


def _clothing_albedo(rng: np.random.Generator, n: int) -> np.ndarray:
    """Clothing brightness: a third dark (hard at night), a third mid, a third bright."""
    tier = rng.integers(0, 3, n)
    lo = np.array([0.03, 0.2, 0.55])[tier]
    hi = np.array([0.12, 0.45, 0.95])[tier]
    return rng.uniform(lo, hi)


def plan_session(config: WorldConfig, session_id: int, segment_index: int) -> SessionPlan:
    """The deterministic plan of one session (objects over the whole drive)."""
    seg = config.segments[segment_index]
    rng = np.random.default_rng((config.seed, session_id))
    quantile = time_of_day_quantile(config, session_id, segment_index)
    cond = session_conditions(rng, seg.time_of_day, seg.route, config.weather, quantile)
    length = cond.ego_speed * config.frames_per_session + MAX_DEPTH_M + 20.0
    hw, sw = cond.road_half_width, cond.sidewalk_width
    cols: dict[str, list] = {k: [] for k in ("kind", "x0", "z0", "vx", "vz", "w", "h", "lift")}
    colors, styles, flags = [], [], []

    def add(kind, x0, z0, vx, vz, w, h, lift, color, style, flag=0):
        for key, val in zip(cols, (kind, x0, z0, vx, vz, w, h, lift), strict=True):
            cols[key].append(val)
        colors.append(color)
        styles.append(style)
        flags.append(flag)

    density = DENSITY_PER_100M[cond.route]
    for kind, per100 in density.items():
        n = int(rng.poisson(per100 * length / 100.0))
        for _ in range(n):
            z0 = float(rng.uniform(-10.0, length))
            side = 1.0 if rng.random() < 0.5 else -1.0
            u = rng.random(4)
            if kind == CAR:
                mode = rng.choice(3, p=[0.4, 0.35, 0.25])  # same way, oncoming, parked
                lane = int(rng.integers(0, cond.lanes))
                if mode == 0:
                    x0, vz, light = (
                        lane * cond.lane_width,
                        cond.ego_speed * rng.uniform(0.7, 1.2),
                        1.0,
                    )
                elif mode == 1:
                    x0, vz, light = (
                        -(lane + 1) * cond.lane_width,
                        -cond.ego_speed * rng.uniform(0.6, 1.1),
                        2.0,
                    )
                else:
                    x0, vz, light = side * (hw + 1.1), 0.0, 0.0
                w = (
                    rng.uniform(1.7, 2.0)
                    if mode != 2 or rng.random() < 0.5
                    else rng.uniform(3.8, 4.6)
                )
                flag = RARE_TRAILER if (mode == 0 and rng.random() < 0.05) else 0
                color = rng.uniform(0.05, 0.9, 3) * (1.0 if u[0] < 0.7 else 0.3)
                add(CAR, x0, z0, 0.0, vz, w, rng.uniform(1.4, 1.7), 0.0, color,
                    (float(mode), u[1], u[2], light), flag)  # fmt: skip
            elif kind in (PERSON, BICYCLE):
                crossing = rng.random() < 0.35
                if crossing:
                    x0 = side * (hw + sw * rng.random())
                    vx = -side * (0.12 if kind == PERSON else 0.4) * rng.uniform(0.7, 1.3)
                    vz = 0.0
                elif kind == PERSON:
                    x0, vx = side * (hw + 0.3 + sw * rng.uniform(0.0, 0.6)), 0.0
                    vz = rng.choice([-1, 0, 1]) * 0.13 * rng.uniform(0.7, 1.3)
                else:
                    x0, vx = hw - 0.6, 0.0
                    vz = rng.uniform(0.35, 0.7) * (1 if rng.random() < 0.75 else -1)
                if kind == PERSON:
                    flag = RARE_STILTS if rng.random() < 0.03 else 0
                    flag |= RARE_CHILD if rng.random() < 0.12 else 0
                    h = 1.15 if flag & RARE_CHILD else rng.uniform(1.6, 1.9)
                    h = h + 1.0 if flag & RARE_STILTS else h
                    shirt = _clothing_albedo(rng, 1)[0]
                    color = np.clip(shirt * rng.uniform(0.6, 1.4, 3), 0.0, 1.0)
                    pants = _clothing_albedo(rng, 1)[0]
                    style = (rng.random(), pants, rng.random(), 0.0)
                    add(PERSON, x0, z0, vx, vz, 0.5 * h / 1.75, h, 0.0, color, style, flag)
                else:
                    flag = RARE_RIDER if rng.random() < 0.75 else 0
                    flag |= RARE_MOTORCYCLE if rng.random() < 0.2 else 0
                    flag |= RARE_WHEELIE if rng.random() < 0.04 else 0
                    side_view = crossing or rng.random() < 0.3
                    w = (1.9 if flag & RARE_MOTORCYCLE else 1.7) if side_view else 0.6
                    light = 1.0 if rng.random() < 0.5 else 0.0
                    color = rng.uniform(0.1, 0.9, 3)
                    rider_shirt = _clothing_albedo(rng, 1)[0]
                    style = (float(side_view), rider_shirt, rng.random(), light)
                    add(BICYCLE, x0, z0, vx, vz, w, 1.1, 0.0, color, style, flag)
            elif kind == TRAFFIC_LIGHT:
                x0 = side * (hw + 0.5)
                add(TRAFFIC_LIGHT, x0, z0, 0.0, 0.0, 0.6, 1.5, rng.uniform(2.4, 3.4),
                    np.full(3, 0.08), (float(rng.integers(0, 3)), u[1], u[2], 1.0))  # fmt: skip
            elif kind == ROAD_SIGN:
                big = cond.route == "highway" and rng.random() < 0.5
                x0 = side * (hw + (1.5 if big else 0.6))
                w, h = (2.5, 1.5) if big else (0.9, 0.9)
                shape = 3.0 if big else float(rng.integers(0, 3))  # circle, triangle, square, board
                add(ROAD_SIGN, x0, z0, 0.0, 0.0, w, h, 3.0 if big else 1.6, np.zeros(3),
                    (shape, u[1], u[2], 0.0))  # fmt: skip
            elif kind == POLE:
                x0 = side * (hw + sw * rng.uniform(0.3, 1.0) + 0.3)
                add(POLE, x0, z0, 0.0, 0.0, rng.uniform(0.12, 0.3), rng.uniform(1.0, 3.5), 0.0,
                    rng.uniform(0.05, 0.6, 1).repeat(3), (0.0, 0.0, 0.0, 0.0))  # fmt: skip
            elif kind == BIN:
                x0 = side * (hw + sw * rng.uniform(0.2, 0.9) + 0.2)
                add(BIN, x0, z0, 0.0, 0.0, rng.uniform(0.5, 0.8), rng.uniform(0.9, 1.3), 0.0,
                    rng.uniform(0.05, 0.5, 3), (0.0, u[1], 0.0, 0.0))  # fmt: skip
            elif kind == RACK:
                x0 = side * (hw + sw * rng.uniform(0.3, 0.9) + 0.3)
                metal, loops = np.full(3, rng.uniform(0.4, 0.7)), float(rng.integers(2, 4))
                add(RACK, x0, z0, 0.0, 0.0, rng.uniform(1.5, 2.5), 0.8, 0.0, metal,
                    (loops, 0.0, 0.0, 0.0))  # fmt: skip
    if cond.lamp_spacing > 0:
        lamp_z = np.arange(cond.lamp_offset - 10.0, length, cond.lamp_spacing)
        for z0 in lamp_z:
            for side in (-1.0, 1.0):
                add(LAMP, side * (hw + sw + 0.5), float(z0), 0.0, 0.0, 0.18, 6.0, 0.0,
                    np.full(3, 0.3), (0.0, 0.0, 0.0, 1.0))  # fmt: skip
    arr = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    return SessionPlan(
        session_id=session_id,
        segment=seg.name,
        conditions=cond,
        kind=arr["kind"].astype(np.int64),
        x0=arr["x0"],
        z0=arr["z0"],
        vx=arr["vx"],
        vz=arr["vz"],
        width=arr["w"],
        height=arr["h"],
        lift=arr["lift"],
        color=np.asarray(colors, dtype=np.float32).reshape(-1, 3),
        style=np.asarray(styles, dtype=np.float32).reshape(-1, 4),
        flags=np.asarray(flags, dtype=np.int64),
    )
