"""Camera geometry, the road surface and the light that falls on it.

Radiance is linear: albedo x illumination + emission. Night realism comes from here: a low
ambient level, the ego car's headlight cone, pools of light under street lamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alkit.sim.scene import CAMERA_HEIGHT_M, SessionConditions

#: Ambient light, headlight strength, street-lamp strength, camera gain and read noise.
LIGHT_LEVELS: dict[str, dict[str, float]] = {
    "day": {"ambient": 1.0, "headlight": 0.0, "lamp": 0.0, "gain": 0.9, "read_noise": 0.004},
    "dusk": {"ambient": 0.2, "headlight": 0.3, "lamp": 0.3, "gain": 1.8, "read_noise": 0.01},
    "night": {"ambient": 0.02, "headlight": 0.9, "lamp": 0.6, "gain": 2.5, "read_noise": 0.016},
}
WEATHER_LIGHT = {"clear": 1.0, "rain": 0.65, "fog": 0.8}
LAMP_POOL_SIGMA_M = 4.5
FOG_DISTANCE_M = 30.0


@dataclass(frozen=True)
class Camera:
    """A pinhole camera ``CAMERA_HEIGHT_M`` above a flat road, looking straight ahead."""

    height: int
    width: int

    @property
    def focal(self) -> float:
        return 1.0 * self.width

    @property
    def horizon(self) -> float:
        return 0.42 * self.height

    def project(self, x, z, lift, w, h):
        """Screen box ``(x0, y0, x1, y1)`` px of a ``w x h`` m upright object at ``(x, z)``."""
        f = self.focal
        xc = self.width / 2 + f * x / z
        bottom = self.horizon + f * (CAMERA_HEIGHT_M - lift) / z
        hw, hh = f * w / z / 2, f * h / z
        return xc - hw, bottom - hh, xc + hw, bottom

    def ground_grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Road coordinates under every pixel below the horizon.

        Returns ``ground`` ``(H, W)`` bool, ``X`` and ``Z`` ``(H, W)`` float32 metres (inf above
        the horizon).
        """
        ys = np.arange(self.height, dtype=np.float32)[:, None] + 0.5  # (H, 1)
        xs = np.arange(self.width, dtype=np.float32)[None, :] + 0.5  # (1, W)
        below = ys - self.horizon  # (H, 1)
        ground_rows = below > 0.5
        z = np.where(ground_rows, self.focal * CAMERA_HEIGHT_M / np.maximum(below, 0.5), np.inf)
        z = np.broadcast_to(z, (self.height, self.width)).astype(np.float32)  # (H, W)
        x = ((xs - self.width / 2) * np.where(np.isfinite(z), z, 0.0) / self.focal).astype(
            np.float32
        )  # (H, W)
        ground = np.broadcast_to(ground_rows, (self.height, self.width)).copy()
        return ground, x, z


def headlight(x: np.ndarray, z: np.ndarray, strength: float) -> np.ndarray:
    """The ego car's low-beam cone on the road: bright ahead, fading with distance."""
    if strength == 0.0:
        return np.zeros_like(z)
    zf = np.where(np.isfinite(z), z, 1e3)
    spread = 0.12 * zf + 1.3  # beam half-width grows with distance
    onset = np.clip((zf - 2.5) / 2.5, 0.0, 1.0)
    return strength * onset * np.exp(-((x / spread) ** 2) - zf / 14.0)


def lamp_pool(x: np.ndarray, z: np.ndarray, lamps_xz: np.ndarray, strength: float) -> np.ndarray:
    """Sum of Gaussian pools of light under lamps at ``lamps_xz`` ``(L, 2)`` metres."""
    out = np.zeros(np.broadcast(x, z).shape, np.float32)
    if strength == 0.0 or len(lamps_xz) == 0:
        return out
    two_s2 = 2 * LAMP_POOL_SIGMA_M**2
    for lx, lz in lamps_xz:
        out += np.exp(-((x - lx) ** 2 + (z - lz) ** 2) / two_s2)
    return strength * out


@dataclass(frozen=True)
class RoadLayout:
    """Per-session road albedo without lane dashes, and where dashes may be painted.

    ``albedo`` ``(H, W, 3)``; ``dash_lines`` ``(H, W)`` bool: pixels on a dashed line;
    ``dash_index`` ``(D,)`` int: their flat indices (row-major), where a frame paints dashes.
    """

    albedo: np.ndarray
    dash_lines: np.ndarray
    dash_index: np.ndarray


def road_layout(cam: Camera, cond: SessionConditions, grid, sky_row_albedo) -> RoadLayout:
    """Paint road, sidewalks, verges, solid lines and the sky for one session."""
    ground, x, z = grid
    ax = np.abs(x)
    hw, sw, lw = cond.road_half_width, cond.sidewalk_width, cond.lane_width
    wet = cond.weather == "rain"
    road = np.array([0.14, 0.14, 0.15] if wet else [0.24, 0.24, 0.25], np.float32)
    verge = {
        "highway": [0.20, 0.28, 0.12],
        "urban": [0.32, 0.30, 0.28],
        "suburban": [0.14, 0.32, 0.10],
    }[cond.route]
    albedo = np.empty((cam.height, cam.width, 3), np.float32)
    albedo[:] = sky_row_albedo  # (H, 1, 3) broadcast
    on_ground = ground[..., None]
    albedo = np.where(on_ground, np.asarray(verge, np.float32), albedo)
    albedo = np.where((on_ground & (ax < hw + sw)[..., None]), np.float32(0.45), albedo)
    albedo = np.where((on_ground & (ax < hw)[..., None]), road, albedo)
    line_w = np.maximum(0.12, 0.6 * np.where(np.isfinite(z), z, 0) / cam.focal)  # >= ~1 px wide
    edges = ground & (np.abs(ax - hw) < line_w)
    albedo[edges] = 0.85
    dash = np.zeros_like(ground)
    for k in range(-cond.lanes, cond.lanes):
        dash |= ground & (np.abs(x - (k + 0.5) * lw) < line_w)
    return RoadLayout(albedo=albedo, dash_lines=dash, dash_index=np.flatnonzero(dash))
