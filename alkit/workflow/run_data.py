"""A run's data: the synthetic world (:class:`WorldData`), or a team's own labelled COCO
set and pool (:class:`CocoData`), behind one interface (:class:`RunData`).

``01 TRAIN`` decides which, from its parameters, and writes ``<out_dir>/data.json``; the
later steps take that path (``data_path``) and ask it for what they need: the initial
labelled set, the pool, the classes, the model's input size, the test sets. Only the world
has an oracle and a simulated curator (they read its ground truth).

Own data::

    labelled=COCO_URL   a COCO instances file (any fsspec URL); its images under
                        images_root (default: the first of the COCO file's folder, its
                        images/ and ../images that holds them; see
                        ``alkit.data.datasets.find_images_root``)
    classes=[...]       the classes to learn: a subset of the file's categories (after
                        category_map); empty: all of them, in category id order
    input_size=[H, W]   every image (labelled, pool, test) is letterboxed into it
    pool=POOL_URL       a folder of images, a video or folder of videos, or a table
                        (``alkit.data.sources.open_pool``); fps for videos
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, ClassVar

from torch.utils.data import Dataset

from alkit.data import storage
from alkit.data.coco import normalize_name
from alkit.data.datasets import CachedFrames, CocoFrames, find_images_root
from alkit.data.letterbox import input_size as check_input_size
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.errors import ConfigError, DataError


def coco_categories(url: str) -> list[str]:
    """The category names of a COCO file, in category id order."""
    try:
        obj = storage.read_json(url)
    except FileNotFoundError:
        raise DataError(f"COCO file not found: {url}") from None
    cats = obj.get("categories") if isinstance(obj, Mapping) else None
    if not isinstance(cats, list) or not cats:
        raise DataError(f"{url}: no 'categories' list: is it a COCO instances file?")
    try:
        return [str(c["name"]) for c in sorted(cats, key=lambda c: c["id"])]
    except (KeyError, TypeError) as err:
        raise DataError(f"{url}: a category lacks field {err}") from None


def mapped_categories(url: str, category_map: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(category, the class it becomes under category_map)`` for each category of a COCO
    file, in category id order (names compared as ``alkit.data.coco.normalize_name`` does)."""
    mapped = {normalize_name(k): v for k, v in category_map.items()}
    return [(c, mapped.get(normalize_name(c), c)) for c in coco_categories(url)]


def check_classes_of_interest(classes_of_interest: Sequence[str], classes: Sequence[str]) -> None:
    """``ConfigError`` naming the classes of interest that are not among ``classes``."""
    unknown = [c for c in classes_of_interest if c not in classes]
    if isinstance(classes_of_interest, str) or unknown or not classes_of_interest:
        raise ConfigError(
            f"classes_of_interest {list(unknown or [classes_of_interest])} are not among the "
            f"classes {list(classes)} (the labelled data's categories)"
        )


class RunData(ABC):
    """Where a run's data come from: :class:`WorldData` or :class:`CocoData`, one interface
    (see the module docstring); plain values, saved as ``data.json``.

    Both have ``classes`` (the classes the detectors learn) and ``version``
    (``{"root", "hash"}`` of the dataset version the step's ensemble trained on; empty: the
    initial labelled set).
    """

    classes: tuple[str, ...]
    version: dict
    #: ``True`` for a team's own data (no oracle, no simulated curator, letterboxed images)
    own: ClassVar[bool]

    def save(self, url: str) -> str:
        storage.atomic_write_json(url, asdict(self))
        return url

    @staticmethod
    def load(url: str) -> RunData:
        """The ``data.json`` a train step wrote: world data where it names a world."""
        raw = storage.read_json(url)
        kind = WorldData if isinstance(raw, Mapping) and raw.get("world") else CocoData
        names = {f.name for f in fields(kind)}
        try:
            data = kind(**{k: v for k, v in raw.items() if k in names})
        except TypeError as err:
            raise DataError(f"{url}: not a run's data.json ({err})") from None
        return data.normalized()

    def labelled_version(self, initial_stride: int = 2) -> DatasetVersion:
        """The labelled set the ensemble trained on: ``version``, else the initial set."""
        if self.version:
            from alkit.data.versions import load_version

            return load_version(self.version["root"], self.version["hash"])
        return self.initial_version(initial_stride)

    @property
    def sim(self) -> Any:
        """The synthetic world (``ConfigError`` for own data)."""
        raise ConfigError("this run has no synthetic world: it runs on own data")

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(H, W)`` own images are letterboxed into; ``None``: the world's own frame size."""
        return None

    @abstractmethod
    def normalized(self) -> RunData:
        """The same data with JSON's lists back as tuples and dicts."""

    @abstractmethod
    def initial_version(self, initial_stride: int = 2) -> DatasetVersion:
        """The labelled set before any round."""

    @abstractmethod
    def pool(self, url: str = "", fps: float | None = None) -> Pool:
        """The unlabelled pool: ``open_pool(url)`` where given, else the data's own."""

    @abstractmethod
    def visible(self) -> Callable | None:
        """The simulated curator's view of ground truth (MANUAL); ``None`` without one."""

    @abstractmethod
    def test_sets(
        self, names: Sequence[str], test_stride: int = 4, test: str = ""
    ) -> dict[str, Dataset]:
        """The test sets to evaluate on, by name."""


@dataclass(frozen=True)
class WorldData(RunData):
    """The synthetic world: ``world`` is its config dict."""

    world: dict
    classes: tuple[str, ...] = ()
    version: dict = field(default_factory=dict)
    own: ClassVar[bool] = False

    @classmethod
    def of_world(cls, world: Any) -> WorldData:
        from alkit.data.classes import CLASSES

        return cls(world=world.config.to_dict(), classes=CLASSES)

    def normalized(self) -> WorldData:
        return WorldData(dict(self.world), tuple(self.classes), dict(self.version))

    @cached_property
    def sim(self) -> Any:
        from alkit.sim import World, WorldConfig

        return World(WorldConfig.from_dict(self.world))

    def initial_version(self, initial_stride: int = 2) -> DatasetVersion:
        """The world's initial segment, every ``initial_stride``-th frame."""
        from alkit.sim.experiment import initial_version

        return initial_version(self.sim, initial_stride)

    def pool(self, url: str = "", fps: float | None = None) -> Pool:
        """The world's pool segment, or ``open_pool(url)`` at the world's frame size."""
        if url:
            from alkit.data.sources import open_pool

            size = self.sim.config.image_height, self.sim.config.image_width
            return open_pool(url, size, fps)
        from alkit.sim.experiment import world_pool

        return world_pool(self.sim)

    def visible(self) -> Callable:
        from alkit.sim.experiment import visible_objects

        return visible_objects(self.sim)

    def test_sets(
        self, names: Sequence[str], test_stride: int = 4, test: str = ""
    ) -> dict[str, Dataset]:
        """The world's named test sets (``alkit.evaluate.test_sets``)."""
        from alkit.evaluate.test_sets import evaluation_sets

        return evaluation_sets(self.sim, names, test_stride)


@dataclass(frozen=True)
class CocoData(RunData):
    """A team's own labelled COCO set (``labelled``, its images under ``images_root``, its
    categories renamed by ``category_map``), letterboxed into ``input_size``."""

    labelled: str
    images_root: str = ""
    classes: tuple[str, ...] = ()
    category_map: dict = field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    version: dict = field(default_factory=dict)
    own: ClassVar[bool] = True
    #: own data has no synthetic world (``WorldData.world`` is its config)
    world: ClassVar[None] = None

    @classmethod
    def of_coco(
        cls,
        labelled: str,
        images_root: str = "",
        classes: Sequence[str] = (),
        category_map: Mapping[str, str] | None = None,
        input_size: Sequence[int] = (96, 160),
    ) -> CocoData:
        """Own data; checks that ``classes`` are among the file's (mapped) categories."""
        category_map = dict(category_map or {})
        names = list(dict.fromkeys(m for _, m in mapped_categories(labelled, category_map)))
        if isinstance(classes, str):
            raise ConfigError(f"classes must be a list of names, got {classes!r}")
        chosen = list(classes) or names
        known = {normalize_name(c) for c in names}
        unknown = [c for c in chosen if normalize_name(c) not in known]
        if unknown:
            raise ConfigError(
                f"classes {unknown} are not categories of {labelled}; its categories: {names}"
            )
        return cls(
            labelled=labelled,
            images_root=find_images_root(labelled, images_root=images_root),
            classes=tuple(chosen),
            category_map=category_map,
            input_size=check_input_size(input_size),
        )

    def normalized(self) -> CocoData:
        size = None if self.input_size is None else tuple(self.input_size)
        return CocoData(self.labelled, self.images_root, tuple(self.classes),
                       dict(self.category_map), size, dict(self.version))  # fmt: skip

    def _ignored(self, url: str) -> list[str]:
        """The categories of the COCO file ``url`` that are not among the classes."""
        chosen = {normalize_name(c) for c in self.classes}
        return [
            c
            for c, m in mapped_categories(url, self.category_map)
            if normalize_name(m) not in chosen
        ]

    def coco_version(self, url: str, images_root: str = "") -> DatasetVersion:
        """A COCO file as a dataset version of this run's classes (boxes in image px)."""
        return DatasetVersion.from_coco(
            url,
            images_root or (self.images_root if url == self.labelled else None),
            classes=self.classes,
            category_map=self.category_map,
            ignore_categories=self._ignored(url),
        )

    def initial_version(self, initial_stride: int = 2) -> DatasetVersion:
        """The own COCO set (``initial_stride`` is the world's)."""
        return self.coco_version(self.labelled)

    def pool(self, url: str = "", fps: float | None = None) -> Pool:
        """``open_pool(url)``: own data has no pool of its own."""
        if not url:
            raise ConfigError("pool is empty: give the pool of own data (-p pool=URL)")
        from alkit.data.sources import open_pool

        return open_pool(url, self.input_size, fps)

    def visible(self) -> None:
        """Own data has no simulated curator (it would read ground truth)."""
        return None

    def test_sets(
        self, names: Sequence[str], test_stride: int = 4, test: str = ""
    ) -> dict[str, Dataset]:
        """The own COCO file ``test`` as the test set ``test`` (none without it)."""
        if not test:
            return {}
        frames = CocoFrames(
            test,
            classes=self.classes,
            ignore_categories=self._ignored(test),
            category_map=self.category_map,
            input_size=self.input_size,
        )
        return {"test": CachedFrames(frames)}


def check_own_data(values: Mapping[str, Any]) -> CocoData | None:
    """Before a run on own data trains for minutes: the labelled file's categories, the
    classes, the classes of interest and the pool (opened, so a bad folder fails now).
    ``values``: the run's parameters; ``None`` when they name no own data."""
    if not values.get("labelled"):
        if values.get("pool"):
            raise ConfigError("pool is set but labelled is not: give the labelled COCO set too")
        return None
    data = CocoData.of_coco(values["labelled"], values.get("images_root", ""),
                           values.get("classes", ()), values.get("category_map"),
                           values.get("input_size", (96, 160)))  # fmt: skip
    if "classes_of_interest" in values:
        check_classes_of_interest(values["classes_of_interest"], data.classes)
    if not values.get("pool"):
        raise ConfigError("labelled is set but pool is not: give the unlabelled pool (-p pool=URL)")
    data.pool(values["pool"], values.get("fps"))
    return data


def load_run_data(url: str) -> RunData:
    """The ``data.json`` a train step wrote."""
    return RunData.load(url)


__all__ = [
    "CocoData",
    "RunData",
    "WorldData",
    "check_classes_of_interest",
    "check_own_data",
    "coco_categories",
    "load_run_data",
    "mapped_categories",
]
