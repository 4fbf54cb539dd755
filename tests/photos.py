"""Real photographs for tests: image folders, videos and COCO sets made from them.

The photos ship inside installed packages (nothing is downloaded): scikit-image's
``skimage/data/`` (astronaut, camera, chelsea, coffee, motorcycle_left/right, rocket) and
matplotlib's ``mpl-data/sample_data/grace_hopper.jpg``. They are read by path (the
``skimage.data.*()`` functions may try to fetch files).

``KNOWN_BOXES`` holds one object box per photo, **measured by hand**: each photo was viewed
with a 50 px grid drawn over it and the box edges were read off the grid (about +-10 px).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
import skimage
from PIL import Image

_SKIMAGE = Path(os.path.dirname(skimage.__file__)) / "data"

#: name -> file of each photograph (size W x H in the comment).
PHOTOS: dict[str, Path] = {
    "astronaut": _SKIMAGE / "astronaut.png",  # 512 x 512, a person
    "camera": _SKIMAGE / "camera.png",  # 512 x 512 grayscale, a person with a camera
    "chelsea": _SKIMAGE / "chelsea.png",  # 451 x 300, a cat
    "coffee": _SKIMAGE / "coffee.png",  # 600 x 400, a cup
    "motorcycle_left": _SKIMAGE / "motorcycle_left.png",  # 741 x 500, a motorcycle
    "motorcycle_right": _SKIMAGE / "motorcycle_right.png",  # 741 x 500, the same, moved
    "rocket": _SKIMAGE / "rocket.jpg",  # 640 x 427, a rocket on its pad
    "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
}  # grace_hopper: 512 x 600, a person

#: Hand-measured boxes (see the module docstring): photo -> (class, [x, y, w, h] px).
KNOWN_BOXES: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "astronaut": ("person", (20.0, 15.0, 345.0, 497.0)),  # hair to bottom edge, suit sides
    "camera": ("person", (0.0, 65.0, 332.0, 447.0)),  # left edge to the hand on the camera
    "chelsea": ("cat", (0.0, 0.0, 380.0, 300.0)),  # the head fills the frame to x~380
    "coffee": ("cup", (172.0, 18.0, 242.0, 282.0)),  # rim to the bottom of the handle
    "motorcycle_left": ("motorcycle", (92.0, 100.0, 593.0, 350.0)),  # fender to front tyre
    "grace_hopper": ("person", (15.0, 22.0, 497.0, 578.0)),  # cap top to bottom, shoulders
}


def photo(name: str) -> np.ndarray:
    """Photograph ``name`` (a key of ``PHOTOS``) as ``(H, W, 3)`` uint8 RGB."""
    with Image.open(PHOTOS[name]) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(h, w, 3)`` -> ``(height, width, 3)`` uint8, bilinear (Pillow)."""
    out = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# a folder pool

#: What ``photo_folder`` writes, in turn: (photo, how it is changed, file extension).
#: Sizes (H x W): 512x512, 300x400, 427x640, 300x451, 300x256, 400x600, 512x512.
FOLDER_PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("astronaut", "as is", ".png"),
    ("coffee", "crop rows 50:350, cols 100:500", ".png"),
    ("rocket", "as is", ".jpg"),
    ("chelsea", "mirrored", ".jpeg"),
    ("grace_hopper", "half size", ".png"),
    ("motorcycle_left", "crop rows 50:450, cols 100:700", ".JPG"),
    ("camera", "grayscale", ".png"),
)


def _folder_image(index: int) -> tuple[np.ndarray, str, bool]:
    """``(image, extension, grayscale)`` of ``FOLDER_PHOTOS[index % 7]``."""
    name, _, ext = FOLDER_PHOTOS[index % len(FOLDER_PHOTOS)]
    image = photo(name)
    if name == "coffee":
        image = image[50:350, 100:500]
    elif name == "chelsea":
        image = image[:, ::-1]
    elif name == "grace_hopper":
        image = resize(image, 300, 256)
    elif name == "motorcycle_left":
        image = image[50:450, 100:700]
    return np.ascontiguousarray(image), ext, name == "camera"


@dataclass(frozen=True)
class PhotoFile:
    """One image ``photo_folder`` wrote.

    Attributes:
        rel: path relative to the folder (posix), e.g. ``"drive_a/frame_001.png"``.
        path: the file.
        session: its subfolder (``"."`` at the top).
        height, width: its size in pixels.
        image: ``(height, width, 3)`` uint8 RGB that was encoded (a PNG decodes to exactly
            this; a JPEG to about this).
    """

    rel: str
    path: Path
    session: str
    height: int
    width: int
    image: np.ndarray


def photo_folder(
    root: str | os.PathLike,
    sessions: Sequence[str] = ("drive_a", "drive_b/part_1", ""),
    per_session: int = 3,
    start: int = 0,
) -> list[PhotoFile]:
    """Write a folder pool of photographs: ``per_session`` images in each session subfolder
    (``""``: at the top), taken in turn from ``FOLDER_PHOTOS`` from ``start``, named
    ``frame_000.png``, ... Returns what it wrote, sorted by relative path."""
    root = Path(root)
    written, k = [], start
    for session in sessions:
        folder = root / session if session else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_session):
            image, ext, gray = _folder_image(k)
            k += 1
            path = folder / f"frame_{i:03d}{ext}"
            pil = Image.fromarray(image)
            if gray:
                pil = pil.convert("L")
                image = np.repeat(np.asarray(pil)[..., None], 3, axis=2)
            if ext.lower() == ".png":
                pil.save(path, format="PNG")
            else:
                pil.save(path, format="JPEG", quality=90)
            rel = path.relative_to(root).as_posix()
            written.append(PhotoFile(rel, path, session or ".", *image.shape[:2], image))
    return sorted(written, key=lambda f: f.rel)


# ---------------------------------------------------------------------------------------------
# a video


def pan_frames(
    n_frames: int, size: tuple[int, int] = (64, 96), name: str = "astronaut"
) -> np.ndarray:
    """``(n_frames, H, W, 3)`` uint8: a slow zoom into photo ``name`` while panning right."""
    image = photo(name)
    h, w = image.shape[:2]
    out_h, out_w = size
    frames = []
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        crop_w = w * (1.0 - 0.4 * t)  # zoom in to 60 %
        crop_h = min(h, crop_w * out_h / out_w)
        x0 = (w - crop_w) * t  # pan left -> right
        y0 = (h - crop_h) / 2
        box = (int(x0), int(y0), int(x0 + crop_w), int(y0 + crop_h))
        crop = Image.fromarray(image).crop(box).resize((out_w, out_h), Image.Resampling.BILINEAR)
        frames.append(np.asarray(crop, dtype=np.uint8))
    return np.stack(frames)


def photo_video(
    path: str | os.PathLike,
    n_frames: int = 12,
    fps: int = 12,
    size: tuple[int, int] = (64, 96),
    name: str = "astronaut",
    codec: str = "h264",
    gop: int = 4,
) -> np.ndarray:
    """Encode ``pan_frames`` as a video at ``path`` (container from its ending) with PyAV.

    ``size`` ``(H, W)`` must be even (yuv420p); ``gop``: frames between key frames (h264 with
    B-frames, so decode order differs from presentation order). Returns the ``(n_frames, H,
    W, 3)`` uint8 frames encoded (decoded frames are close to them, not equal: lossy).
    """
    import av

    frames = pan_frames(n_frames, size, name)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        if codec in ("h264", "libx264"):
            stream.options = {"g": str(gop), "keyint_min": str(gop), "crf": "12"}
        else:
            stream.codec_context.gop_size = gop
            stream.codec_context.bit_rate = 2_000_000
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


# ---------------------------------------------------------------------------------------------
# labelled COCO sets


class CocoSet(NamedTuple):
    """A COCO set ``coco_set`` wrote: unpacks as ``(instances, images_root)``."""

    instances: str  # the COCO instances JSON
    images_root: str  # the folder its file_names are relative to


def _variants(name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(variant, image, box xywh)`` of photo ``name``: as is, mirrored, cropped, half size."""
    image = photo(name)
    h, w = image.shape[:2]
    box = np.array(KNOWN_BOXES[name][1], np.float64)  # (4,)
    x, y, bw, bh = box
    out = [("orig", image, box), ("flip", image[:, ::-1], np.array([w - x - bw, y, bw, bh]))]
    # crop away 10 % of each side; the box is cut to the crop
    cx0, cy0, cx1, cy1 = round(0.1 * w), round(0.1 * h), round(0.9 * w), round(0.9 * h)
    x0, y0 = max(x, cx0) - cx0, max(y, cy0) - cy0
    x1, y1 = min(x + bw, cx1) - cx0, min(y + bh, cy1) - cy0
    out.append(("crop", image[cy0:cy1, cx0:cx1], np.array([x0, y0, x1 - x0, y1 - y0])))
    sh, sw = h // 2, w // 2
    half = resize(image, sh, sw)
    out.append(("half", half, box * np.array([sw / w, sh / h, sw / w, sh / h])))
    return out


def coco_set(
    root: str | os.PathLike, classes: Sequence[str] = ("person",), pairs: bool = False
) -> CocoSet:
    """Write a labelled COCO set of the photos whose ``KNOWN_BOXES`` class is in ``classes``.

    Each such photo gives four JPEGs (as is, mirrored, 10 % cropped off each side, half
    size), its hand-measured box moved with it. ``pairs``: also two photos of different
    classes side by side (each scaled to 256 px tall), two boxes per image. Layout: images
    under ``root/images``, the file at ``root/annotations/instances.json`` (alkit's default
    layout: ``CocoFrames(instances)`` finds the images). Categories ``1..C`` are ``classes``
    in order. ``("person",)`` gives 12 images; ``("person", "cat", "cup")`` 20 (23 with
    ``pairs``).
    """
    root = Path(root)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n, (label, _) in KNOWN_BOXES.items() if label in classes]
    if not names:
        raise ValueError(f"no photo has a known box of the classes {list(classes)}")
    items: list[tuple[str, np.ndarray, list[tuple[int, np.ndarray]]]] = []
    for name in names:
        label = list(classes).index(KNOWN_BOXES[name][0])
        for variant, image, box in _variants(name):
            items.append((f"{name}_{variant}.jpg", image, [(label, box)]))
    if pairs:
        for a, b in zip(names, names[1:], strict=False):
            if KNOWN_BOXES[a][0] == KNOWN_BOXES[b][0]:
                continue
            parts, boxes, x_at = [], [], 0.0
            for name in (a, b):
                image = photo(name)
                scale = 256 / image.shape[0]
                width = round(image.shape[1] * scale)
                parts.append(resize(image, 256, width))
                box = np.array(KNOWN_BOXES[name][1]) * np.array([width / image.shape[1], scale] * 2)
                box[0] += x_at
                boxes.append((list(classes).index(KNOWN_BOXES[name][0]), box))
                x_at += width
            items.append((f"pair_{a}_{b}.jpg", np.concatenate(parts, axis=1), boxes))
    images, annotations = [], []
    for image_id, (file_name, image, boxes) in enumerate(items, start=1):
        Image.fromarray(np.ascontiguousarray(image)).save(images_dir / file_name, quality=90)
        height, width = image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for label, box in boxes:
            bbox = [round(float(v), 2) for v in box]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": i + 1, "name": c, "supercategory": "object"} for i, c in enumerate(classes)
    ]
    instances = root / "annotations" / "instances.json"
    instances.parent.mkdir(parents=True, exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": categories}
    instances.write_text(json.dumps(coco, indent=1))
    return CocoSet(str(instances), str(images_dir))


__all__ = [
    "FOLDER_PHOTOS",
    "KNOWN_BOXES",
    "PHOTOS",
    "CocoSet",
    "PhotoFile",
    "coco_set",
    "pan_frames",
    "photo",
    "photo_folder",
    "photo_video",
    "resize",
]
