"""World settings: image size, session layout and the experiment's segments.

A world is a list of *segments* (``initial``, ``pool``, ``test``), each a run of driving
sessions of ``frames_per_session`` frames with its own mix of time of day and route types.
Frame ids are laid out densely: ``frame_id = session_id * frames_per_session + frame_index``,
so any frame's metadata and pixels follow from (config, frame id) alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from alkit.errors import ConfigError

TIMES_OF_DAY: tuple[str, ...] = ("day", "dusk", "night")
ROUTES: tuple[str, ...] = ("highway", "urban", "suburban")
WEATHERS: tuple[str, ...] = ("clear", "rain", "fog")


@dataclass(frozen=True)
class SegmentSpec:
    """A run of sessions with a mix of conditions.

    ``time_of_day`` and ``route`` are probabilities over ``TIMES_OF_DAY`` and ``ROUTES``.
    """

    name: str
    n_sessions: int
    time_of_day: tuple[float, float, float]
    route: tuple[float, float, float] = (0.2, 0.5, 0.3)

    def __post_init__(self) -> None:
        if self.n_sessions < 0:
            raise ConfigError(f"segment {self.name!r}: n_sessions must be >= 0")
        for label, probs in (("time_of_day", self.time_of_day), ("route", self.route)):
            if len(probs) != 3 or min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
                raise ConfigError(
                    f"segment {self.name!r}: {label} must be 3 probabilities summing to 1, "
                    f"got {probs}"
                )


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world's pixels and labels.

    Attributes:
        seed: world seed; the same (seed, frame id) always gives the same frame.
        image_height, image_width: frame size in pixels.
        frames_per_session: frames in one drive (10 frames per second of driving).
        segments: the experiment's parts, in frame-id order.
        weather: probabilities over ``WEATHERS``.
    """

    seed: int = 0
    image_height: int = 96
    image_width: int = 160
    frames_per_session: int = 100
    segments: tuple[SegmentSpec, ...] = field(default_factory=tuple)
    weather: tuple[float, float, float] = (0.7, 0.2, 0.1)

    def __post_init__(self) -> None:
        if self.image_height < 32 or self.image_width < 32:
            raise ConfigError(
                f"image size {self.image_height}x{self.image_width} is too small (min 32x32)"
            )
        if self.frames_per_session < 1:
            raise ConfigError("frames_per_session must be >= 1")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ConfigError(f"segment names must be unique, got {names}")

    @property
    def n_sessions(self) -> int:
        return sum(s.n_sessions for s in self.segments)

    @property
    def n_frames(self) -> int:
        return self.n_sessions * self.frames_per_session

    @property
    def scale(self) -> float:
        """Pixel scale relative to the quick profile's 96 px height."""
        return self.image_height / 96.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WorldConfig:
        d = dict(d)
        d["segments"] = tuple(
            SegmentSpec(
                name=s["name"],
                n_sessions=int(s["n_sessions"]),
                time_of_day=tuple(s["time_of_day"]),
                route=tuple(s["route"]),
            )
            for s in d.get("segments", ())
        )
        d["weather"] = tuple(d.get("weather", (0.7, 0.2, 0.1)))
        return cls(**d)

    @property
    def hash(self) -> str:
        """Content hash of the settings (16 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


#: Image sizes per profile: ``quick`` learns on 2 CPU cores in minutes, ``full`` is for GPUs;
#: ``night`` is the replicated experiment's world (``experiment_world``).
PROFILE_SIZES: dict[str, tuple[int, int]] = {
    "quick": (96, 160),
    "full": (384, 640),
    "night": (96, 160),
    "night_lean": (96, 160),
}

#: Sessions per segment per profile. The pool is about 100x the labelling budget.
PROFILE_SESSIONS: dict[str, dict[str, int]] = {
    "quick": {"initial": 40, "pool": 100, "test": 20},
    "full": {"initial": 600, "pool": 2000, "test": 200},
    "night": {"initial": 40, "pool": 100, "test": 20, "night_test": 40},
    "night_lean": {"initial": 40, "pool": 300, "test": 20, "night_test": 40},
}

#: The initial (labelled) segment's mix of day, dusk and night drives per profile.
INITIAL_TIME_OF_DAY: dict[str, tuple[float, float, float]] = {
    "quick": (0.85, 0.10, 0.05),
    "full": (0.85, 0.10, 0.05),
    "night": (0.40, 0.10, 0.50),
    "night_lean": (0.75, 0.10, 0.15),
}

SEGMENTS = ("initial", "pool", "test", "night_test")


def experiment_world(profile: str = "quick", seed: int = 0, **sessions: int) -> WorldConfig:
    """The seed's experiment: a mostly-day labelled set, a mostly-night pool, a day-heavy test.

    ``initial``: 85% day / 10% dusk / 5% night, so few night people and bicycles are labelled.
    ``pool``: 10% day / 20% dusk / 70% night, with more urban drives; selection restricts it to
    night frames by metadata, as the seed restricted its pool by tags.
    ``test``: a global test set, mostly day (60% day, 15% dusk, 25% night).
    ``night_test`` (when it has sessions): night drives only, never labelled or selected, for a
    night test set large enough to resolve small differences.

    Profile ``night`` (the replicated experiment's world) labels half night drives in the
    initial set (the seed's 850k initial frames held few night frames, which is still
    thousands; 5% of 40 drives is 2 drives, 100 labelled frames) and adds 40 night test drives;
    everything else is ``quick``'s.
    Profile ``night_lean`` (a data-limited night learner, ``alkit.experiments.leverage``):
    ``night``'s frames and test drives, but 6 night drives of 40 in the initial set (300
    labelled night frames of 2,000) and a pool of 300 drives (21,000 night frames).
    Override session counts with keyword arguments, e.g. ``experiment_world("quick", pool=20)``.
    """
    if profile not in PROFILE_SIZES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILE_SIZES)}")
    counts = {"night_test": 0, **PROFILE_SESSIONS[profile], **sessions}
    unknown = set(counts) - set(SEGMENTS)
    if unknown:
        raise ConfigError(f"unknown segment(s) {sorted(unknown)}; use {', '.join(SEGMENTS)}")
    h, w = PROFILE_SIZES[profile]
    segments = [
        SegmentSpec("initial", counts["initial"], INITIAL_TIME_OF_DAY[profile], (0.25, 0.45, 0.30)),
        SegmentSpec("pool", counts["pool"], (0.10, 0.20, 0.70), (0.15, 0.55, 0.30)),
        SegmentSpec("test", counts["test"], (0.60, 0.15, 0.25), (0.25, 0.45, 0.30)),
    ]
    if counts["night_test"]:  # only then: the worlds without it keep their config and hash
        segments.append(SegmentSpec("night_test", counts["night_test"], (0.0, 0.0, 1.0),
                                    (0.25, 0.45, 0.30)))  # fmt: skip
    return WorldConfig(seed=seed, image_height=h, image_width=w, segments=tuple(segments))
