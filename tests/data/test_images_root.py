"""Where a labelled COCO set's images are: the layouts labelling tools write (issue 20, 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alkit.data.datasets import CocoFrames, find_images_root
from alkit.errors import DataError
from alkit.workflow.run_data import CocoData

H, W = 24, 32


def write_set(coco: Path, images: Path) -> None:
    """A COCO file at ``coco`` with one 24x32 image ``a.png`` (a person box) in ``images``."""
    images.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[4:20, 8:16] = 200
    Image.fromarray(pixels).save(images / "a.png")
    coco.parent.mkdir(parents=True, exist_ok=True)
    obj = {
        "images": [{"id": 7, "file_name": "a.png", "height": H, "width": W}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [8, 4, 8, 16], "area": 128,
             "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "person"}],
    }  # fmt: skip
    coco.write_text(json.dumps(obj))


LAYOUTS = {
    # name: (COCO file, images folder), relative to the test's folder
    "beside": ("set/annotations.json", "set"),
    "label_studio_export": ("set/result.json", "set/images"),
    "coco": ("set/annotations/instances.json", "set/images"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_finds_its_images(tmp_path, layout):
    coco, images = (tmp_path / p for p in LAYOUTS[layout])
    write_set(coco, images)
    assert Path(find_images_root(str(coco))) == images
    frames = CocoFrames(str(coco), classes=("person",))
    assert Path(frames.image_url(0)) == images / "a.png"
    item = frames[0]
    assert item["image"].shape == (3, H, W) and item["frame_id"] == 7
    data = CocoData.of_coco(str(coco), input_size=(H, W))  # what the loop's TRAIN reads
    assert Path(data.images_root) == images
    version = data.initial_version()
    assert version.frames.image_uri.tolist() == [str(images / "a.png")]


def test_images_root_given_elsewhere(tmp_path):
    coco, images = tmp_path / "labels" / "export.json", tmp_path / "photos" / "2024"
    write_set(coco, images)
    with pytest.raises(DataError, match="images_root"):
        CocoData.of_coco(str(coco), input_size=(H, W))
    data = CocoData.of_coco(str(coco), images_root=str(images), input_size=(H, W))
    assert Path(data.images_root) == images
    assert Path(CocoFrames(str(coco), str(images), classes=("person",)).image_url(0)) == (
        images / "a.png"
    )


def test_no_layout_holds_the_images_lists_every_place_tried(tmp_path):
    coco = tmp_path / "set" / "annotations" / "instances.json"
    write_set(coco, tmp_path / "elsewhere")
    folder = coco.parent
    with pytest.raises(DataError) as err:
        CocoData.of_coco(str(coco), input_size=(H, W))
    message = str(err.value)
    for place in (folder / "a.png", folder / "images" / "a.png", tmp_path / "set/images/a.png"):
        assert str(place) in message
    assert "-p images_root=" in message and "'a.png'" in message
    with pytest.raises(DataError, match=str(tmp_path / "nope" / "a.png")):
        CocoData.of_coco(str(coco), images_root=str(tmp_path / "nope"), input_size=(H, W))
