"""Image files reach a model one way: ``read_letterboxed`` (a JPEG decoded at a reduced DCT
scale, then letterboxed), for training (``CocoFrames``, ``VersionFrames``) and scoring
(``ImageSource``) alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alkit.data.coco import decode_image, read_image, read_letterboxed
from alkit.data.datasets import VersionFrames
from alkit.data.letterbox import Letterbox
from alkit.data.sources import open_pool
from alkit.errors import DataError
from tests.photos import photo

SIZE = (96, 160)


@pytest.fixture(scope="module")
def camera_jpeg(tmp_path_factory) -> Path:
    """A 720 x 1280 JPEG (quality 90) made from a real photograph, upscaled like a dashcam's."""
    root = tmp_path_factory.mktemp("jpeg")
    (root / "drive").mkdir()
    big = Image.fromarray(photo("coffee")).resize((1280, 720), Image.Resampling.BICUBIC)
    path = root / "drive" / "frame_000.jpg"
    big.save(path, quality=90)
    big.save(root / "frame_000.png")  # the same picture as a PNG, outside the pool folder
    return path


def test_a_jpeg_is_decoded_at_the_smallest_scale_that_still_covers_the_input(camera_jpeg):
    full, hw = decode_image(str(camera_jpeg))
    assert full.shape == (720, 1280, 3) and hw == (720, 1280)
    small, hw = decode_image(str(camera_jpeg), at_least=(90, 160))
    assert small.shape == (90, 160, 3) and hw == (720, 1280)  # 1/8, the file's own size kept
    half, _ = decode_image(str(camera_jpeg), at_least=(400, 700))
    assert half.shape == (720, 1280, 3)  # 1/2 would be 360 x 640, too small: no reduction
    png, _ = decode_image(str(camera_jpeg.parents[1] / "frame_000.png"), at_least=(90, 160))
    assert png.shape == (720, 1280, 3)  # only JPEGs have DCT scales


def test_reduced_decode_is_close_to_the_full_decode_letterboxed(camera_jpeg):
    box = Letterbox.of((720, 1280), SIZE)
    fast = read_letterboxed(str(camera_jpeg), box)  # (96, 160, 3)
    slow = box.image(read_image(str(camera_jpeg)))  # full decode, then the same resize
    assert fast.shape == slow.shape == (96, 160, 3)
    assert (fast[:3] == 0).all() and (fast[-3:] == 0).all()  # the letterbox's bars: 3 rows
    diff = np.abs(fast.astype(int) - slow.astype(int))
    assert diff.mean() < 2.0 and np.percentile(diff, 99) < 16  # grey levels of 255


def test_training_and_scoring_read_the_same_pixels(camera_jpeg):
    pool = open_pool(str(camera_jpeg.parent), SIZE)
    fid = pool.frame_ids[0]
    scored = pool.source.image(fid)  # what score_pool gets
    assert np.array_equal(scored, pool.source.frame(fid).image)
    version = VersionFrames([fid], [str(camera_jpeg)], [(720, 1280)],
                            [np.zeros((0, 4), np.float32)], [np.zeros(0, np.int64)],
                            input_size=SIZE)  # fmt: skip
    trained = (version[0]["image"].permute(1, 2, 0) * 255).round().byte().numpy()  # (H, W, 3)
    assert np.array_equal(trained, scored)


def test_a_file_of_another_size_names_both_sizes(camera_jpeg):
    with pytest.raises(DataError, match=r"frame_000\.jpg is 720x1280 \(HxW\) but .* 700x1280"):
        read_letterboxed(str(camera_jpeg), Letterbox.of((700, 1280), SIZE))
