"""The classes alkit detects and the object-size buckets used in evaluation."""

from __future__ import annotations

from dataclasses import dataclass

#: Detection classes, in the order of the model's output channels.
#: "bicycle" includes motorcycles; a rider on a bicycle is labelled as a "person".
CLASSES: tuple[str, ...] = ("car", "bicycle", "person", "traffic_light", "road_sign")

#: COCO's size thresholds are set for images about 384-640 px tall: small < 32^2 px,
#: medium < 96^2 px, large beyond. alkit scales the side lengths by image height / 384.
REFERENCE_HEIGHT = 384


def class_index(name: str, classes: tuple[str, ...] = CLASSES) -> int:
    """Index of a class name; raises ``KeyError`` naming the known classes."""
    try:
        return classes.index(name)
    except ValueError:
        raise KeyError(f"unknown class {name!r}; known classes: {', '.join(classes)}") from None


@dataclass(frozen=True)
class SizeBuckets:
    """Object-size buckets by box area in pixels (COCO's convention: area = w * h).

    ``small``: area < small_max_side**2; ``medium``: area < medium_max_side**2; ``large``: the rest.
    For a 96 px tall image (the quick profile) the sides are 8 and 24 px; for 384 px (full
    profile) they are COCO's own 32 and 96 px.
    """

    small_max_side: float
    medium_max_side: float

    @classmethod
    def for_height(cls, image_height: int) -> SizeBuckets:
        """COCO's thresholds scaled to an image height."""
        scale = image_height / REFERENCE_HEIGHT
        return cls(small_max_side=32.0 * scale, medium_max_side=96.0 * scale)

    @property
    def small_area(self) -> float:
        return self.small_max_side**2

    @property
    def medium_area(self) -> float:
        return self.medium_max_side**2

    def bucket(self, area: float) -> str:
        """``"small"``, ``"medium"`` or ``"large"`` for a box area in px^2."""
        if area < self.small_area:
            return "small"
        if area < self.medium_area:
            return "medium"
        return "large"

    def area_ranges(self) -> dict[str, tuple[float, float]]:
        """pycocotools ``areaRng`` entries: name -> [lo, hi) in px^2."""
        big = 1e10
        return {
            "all": (0.0, big),
            "small": (0.0, self.small_area),
            "medium": (self.small_area, self.medium_area),
            "large": (self.medium_area, big),
        }
