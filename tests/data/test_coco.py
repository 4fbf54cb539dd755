"""COCO writing, loading by category name, and a clear DataError for each kind of bad input."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
from PIL import Image

from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.coco import (
    CocoRecord,
    encode_png,
    frames_to_coco,
    load_coco,
    parse_coco,
    read_image,
)
from alkit.errors import DataError

USER_COCO = {
    "images": [
        {"id": 10, "file_name": "a.png", "height": 40, "width": 60},
        {"id": 11, "file_name": "b.png", "height": 40, "width": 60},
    ],
    "annotations": [
        {"id": 100, "image_id": 10, "category_id": 7, "bbox": [1, 2, 10, 20]},
        {"id": 101, "image_id": 10, "category_id": 3, "bbox": [30.5, 0, 5, 5]},
        {"id": 102, "image_id": 11, "category_id": 7, "bbox": [0, 0, 60, 40]},
    ],
    "categories": [{"id": 7, "name": "person"}, {"id": 3, "name": "traffic light"}],
}


def write(tmp_path, obj, name="instances.json") -> str:
    url = str(tmp_path / name)
    storage.atomic_write_text(url, json.dumps(obj))
    return url


def test_user_coco_with_own_category_ids_loads_by_name(tmp_path):
    index = load_coco(write(tmp_path, USER_COCO))
    assert index.frame_ids == [10, 11]
    first = index.record(10)
    assert first.labels.tolist() == [CLASSES.index("person"), CLASSES.index("traffic_light")]
    assert first.boxes.dtype == np.float32 and first.boxes.shape == (2, 4)
    np.testing.assert_allclose(first.boxes[1], [30.5, 0, 5, 5])
    assert index.record(11).labels.tolist() == [CLASSES.index("person")]


def test_unknown_category_name_needs_ignore_or_map(tmp_path):
    coco = copy.deepcopy(USER_COCO)
    coco["categories"].append({"id": 9, "name": "truck"})
    coco["annotations"].append({"id": 103, "image_id": 11, "category_id": 9, "bbox": [1, 1, 2, 2]})
    url = write(tmp_path, coco)
    with pytest.raises(DataError, match=r"instances\.json.*categories\[2\].*'truck' \(id 9\)"):
        load_coco(url)
    assert load_coco(url, ignore_categories=["truck"]).record(11).labels.tolist() == [2]
    mapped = load_coco(url, category_map={"truck": "car"}).record(11).labels.tolist()
    assert mapped == [CLASSES.index("person"), CLASSES.index("car")]


def test_crowd_annotations_are_dropped(tmp_path):
    coco = copy.deepcopy(USER_COCO)
    coco["annotations"][2]["iscrowd"] = 1
    assert len(load_coco(write(tmp_path, coco)).record(11).labels) == 0


def test_frames_to_coco_structure_and_round_trip():
    record = CocoRecord(
        frame_id=5,
        file_name="shard-00000/000000000005.png",
        height=48,
        width=80,
        boxes=np.array([[1.25, 2.5, 10.0, 4.0]], np.float32),
        labels=np.array([1], np.int64),
        meta={"session_id": np.int64(3), "time_of_day": "night"},
        attributes=(("wheelie",),),
    )
    coco = frames_to_coco([record], [record.file_name])
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4, 5]
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    image = coco["images"][0]
    assert image == {
        "id": 5,
        "file_name": "shard-00000/000000000005.png",
        "height": 48,
        "width": 80,
        "alkit": {"session_id": 3, "time_of_day": "night"},
    }
    ann = coco["annotations"][0]
    assert ann["category_id"] == 2 and ann["iscrowd"] == 0 and ann["area"] == 40.0
    json.dumps(coco)  # plain JSON
    back = parse_coco(coco).record(5)
    np.testing.assert_array_equal(back.boxes, record.boxes)
    assert back.labels.tolist() == [1] and back.meta["time_of_day"] == "night"
    assert back.attributes == (("wheelie",),)


def _bad(mutate):
    coco = copy.deepcopy(USER_COCO)
    mutate(coco)
    return coco


BAD_CASES = {
    "missing image key": (
        lambda c: c["images"][1].pop("height"),
        r"images\[1\] is missing key 'height'",
    ),
    "missing annotation key": (
        lambda c: c["annotations"][2].pop("bbox"),
        r"annotations\[2\] is missing key 'bbox'",
    ),
    "missing top-level key": (
        lambda c: c.pop("annotations"),
        "missing top-level key 'annotations'",
    ),
    "zero-area box": (
        lambda c: c["annotations"][1].update(bbox=[3, 3, 0, 5]),
        r"annotation id 101 .* image id 10: field 'bbox' has zero or negative area",
    ),
    "negative box": (
        lambda c: c["annotations"][1].update(bbox=[3, 3, 4, -1]),
        r"annotation id 101 .* image id 10: field 'bbox' has zero or negative area",
    ),
    "out-of-bounds box": (
        lambda c: c["annotations"][2].update(bbox=[50, 0, 11, 40]),
        r"annotation id 102 .* image id 11: field 'bbox' lies outside the 60x40",
    ),
    "negative coordinate": (
        lambda c: c["annotations"][0].update(bbox=[-0.6, 0, 5, 5]),
        r"annotation id 100 .* image id 10: field 'bbox' lies outside",
    ),
    "unknown category id": (
        lambda c: c["annotations"][0].update(category_id=42),
        r"annotation id 100 .* field 'category_id' 42 is not in 'categories'",
    ),
    "duplicate image ids": (
        lambda c: c["images"][1].update(id=10),
        r"images\[1\] \(id 10\): duplicate image id 10",
    ),
    "duplicate annotation ids": (
        lambda c: c["annotations"][2].update(id=100),
        r"annotations\[2\]\): duplicate annotation id 100",
    ),
    "annotation on unknown image": (
        lambda c: c["annotations"][2].update(image_id=99),
        r"annotation id 102 .* field 'image_id' 99 is not an image id",
    ),
    "NaN bbox": (
        lambda c: c["annotations"][0].update(bbox=[float("nan"), 1, 2, 2]),
        r"annotation id 100 .* image id 10: field 'bbox' has NaN",
    ),
    "bbox not 4 numbers": (
        lambda c: c["annotations"][0].update(bbox=[1, 2, 3]),
        r"annotation id 100 .* field 'bbox' must be 4 numbers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_coco_raises_data_error_naming_file_and_record(tmp_path, case):
    mutate, pattern = BAD_CASES[case]
    url = write(tmp_path, _bad(mutate), name="user_labels.json")
    with pytest.raises(DataError, match=pattern) as info:
        load_coco(url)
    assert "user_labels.json" in str(info.value)


def test_tolerance_of_half_a_pixel(tmp_path):
    coco = _bad(lambda c: c["annotations"][2].update(bbox=[-0.4, -0.4, 60.8, 40.8]))
    assert len(load_coco(write(tmp_path, coco)).record(11).labels) == 1


def test_malformed_json_names_file_and_position(tmp_path):
    url = str(tmp_path / "broken.json")
    storage.atomic_write_text(url, '{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match=r"broken\.json: malformed JSON at line 2, column 12"):
        load_coco(url)


def test_missing_coco_file(tmp_path):
    with pytest.raises(DataError, match="COCO file not found.*nothere.json"):
        load_coco(str(tmp_path / "nothere.json"))


# ---------------------------------------------------------------------------------------------
# images


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_read_image_round_trip_and_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    url = str(tmp_path / "rgb.png")
    storage.atomic_write_bytes(url, encode_png(rgb))
    np.testing.assert_array_equal(read_image(url, (6, 9)), rgb)

    gray = rgb[..., 0].copy()
    storage.atomic_write_bytes(str(tmp_path / "g.png"), _png(gray))
    out = read_image(str(tmp_path / "g.png"))
    assert out.shape == (6, 9, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 2], gray)

    rgba = np.concatenate([rgb, np.full((6, 9, 1), 255, np.uint8)], axis=2)
    storage.atomic_write_bytes(str(tmp_path / "a.png"), _png(rgba))
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), rgb)


def test_read_image_errors_name_the_file(tmp_path):
    good = encode_png(np.zeros((6, 9, 3), np.uint8))
    corrupt = str(tmp_path / "corrupt.png")
    storage.atomic_write_bytes(corrupt, b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match=r"cannot decode image .*corrupt\.png"):
        read_image(corrupt)
    truncated = str(tmp_path / "truncated.png")
    storage.atomic_write_bytes(truncated, good[: len(good) // 2])
    with pytest.raises(DataError, match=r"truncated\.png"):
        read_image(truncated)
    with pytest.raises(DataError, match=r"image file not found: .*missing\.png"):
        read_image(str(tmp_path / "missing.png"))
    shaped = str(tmp_path / "shaped.png")
    storage.atomic_write_bytes(shaped, good)
    with pytest.raises(DataError, match=r"shaped\.png is 6x9 \(HxW\) but its labels say 6x10"):
        read_image(shaped, expected_hw=(6, 10))
