"""HeatmapViewer, EnsembleMaps and SelectionExplorer on a pool of own images (letterboxed).

The source here is built in the test: real photographs (scikit-image's data folder) of
different sizes letterboxed into a 64 x 96 model input, metadata as plain dicts without
``time_of_day``, string sessions; the ensemble has one class. Known answers are worked out
by hand from the letterbox geometry (comments give the arithmetic).
"""

from __future__ import annotations

import io
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest
import skimage
import torch
from PIL import Image

from alkit.annotate.detections import in_original
from alkit.data.frames import Frame
from alkit.data.letterbox import Letterbox
from alkit.data.pool import Pool
from alkit.detector.network import Detections, DetectorConfig, UNetDetector
from alkit.ensemble.store import Ensemble
from alkit.errors import ConfigError
from alkit_widgets import EnsembleMaps, HeatmapViewer, SelectionExplorer
from alkit_widgets import ensemble_maps as maps_module
from alkit_widgets.ensemble_maps import frame_caption, map_to_original
from alkit_widgets.heatmap_figure import COLORBAR_PX, upsample
from alkit_widgets.render import png_size

PHOTOS = os.path.join(os.path.dirname(skimage.__file__), "data")
INPUT = (64, 96)  # (H, W) the model input; stride 4 -> 16 x 24 maps
STRIDE = 4


def photo(name: str) -> np.ndarray:
    with Image.open(os.path.join(PHOTOS, name)) as pil:
        return np.asarray(pil.convert("RGB"))


class PhotoSource:
    """A pool source of own images, following alkit.data.sources' contract."""

    def __init__(self, images: dict[int, np.ndarray], metadata: pd.DataFrame, size=INPUT):
        self.images, self.size = images, size
        self.rows = {int(r["frame_id"]): r for r in metadata.to_dict("records")}

    def letterbox(self, frame_id: int) -> Letterbox:
        return Letterbox.of(self.images[frame_id].shape[:2], self.size)

    def original(self, frame_id: int) -> np.ndarray:
        return self.images[frame_id]

    def frame(self, frame_id: int) -> Frame:
        image = self.letterbox(frame_id).image(self.images[frame_id])  # (64, 96, 3)
        empty = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        return Frame(frame_id, image, *empty, meta=dict(self.rows[frame_id]))


# frame 0: astronaut 512 x 512 -> 64 x 64 at x offset 16 (scale 1/8, padding left and right)
# frame 1: coffee 400 x 600 -> 64 x 96 (scale 0.16, no padding)
# frame 2: a 100 x 400 strip of coffee -> 24 x 96 at y offset 20 (scale 0.24, top and bottom)
IMAGES = {0: photo("astronaut.png"), 1: photo("coffee.png"), 2: photo("coffee.png")[:100, :400]}
METADATA = pd.DataFrame(
    {
        "frame_id": [0, 1, 2],
        "uri": ["file:///a.png", "file:///b.png", "file:///c.png"],
        "session_id": ["drive-a", "drive-a", "drive-b"],
        "frame_index": [0, 1, 0],
        "height": [512, 400, 100],
        "width": [512, 600, 400],
        "weather": [None, None, "rain"],  # a user's own column, known for one frame only
    }
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def source() -> PhotoSource:
    return PhotoSource(IMAGES, METADATA)


@pytest.fixture(scope="module")
def ensemble() -> Ensemble:
    torch.manual_seed(0)
    config = DetectorConfig(num_classes=1, width=4, depth=2)
    return Ensemble([UNetDetector(config).eval() for _ in range(2)], ("person",))


def test_the_test_source_letterboxes_as_the_comments_say(source):
    assert (source.letterbox(0).resized, source.letterbox(0).offset) == ((64, 64), (16, 0))
    assert (source.letterbox(1).resized, source.letterbox(1).offset) == ((64, 96), (0, 0))
    assert (source.letterbox(2).resized, source.letterbox(2).offset) == ((24, 96), (0, 20))
    assert source.frame(0).image.shape == (64, 96, 3)


# the mapping functions -------------------------------------------------------------------
def test_map_to_original_crops_the_padding_and_stretches_the_rest():
    cols = np.broadcast_to(np.arange(24, dtype=np.float32), (2, 16, 24))  # value = column
    rows = np.broadcast_to(np.arange(16, dtype=np.float32)[:, None], (2, 16, 24))  # = row
    box = Letterbox.of((512, 512), INPUT)  # the image is on input columns 16..80: cells 4..19
    out = map_to_original(cols, box, STRIDE)
    assert out.shape == (2, 16, 16)  # square, like the image
    np.testing.assert_allclose(out[0, 5], np.arange(4, 20))  # output cell i = input cell 4 + i
    np.testing.assert_allclose(map_to_original(rows, box, STRIDE)[1, :, 7], np.arange(16))
    same = Letterbox.of((400, 600), INPUT)  # no padding: the maps as they are
    np.testing.assert_array_equal(map_to_original(cols, same, STRIDE), cols)


def test_map_to_original_never_shows_padding_for_a_thin_strip():
    box = Letterbox.of((100, 400), INPUT)  # input rows 20..44: cells 5..10 hold the image
    mask = np.zeros((1, 16, 24), np.float32)
    mask[:, 5:11] = 1.0
    out = map_to_original(mask, box, STRIDE)
    assert out.shape == (1, 16, 64)  # 1 : 4 like the 100 x 400 image, at least 16 cells high
    np.testing.assert_array_equal(out, 1.0)  # no blend with the padding rows above and below
    with pytest.raises(ValueError, match="do not cover the 64x96 input"):
        map_to_original(np.zeros((1, 8, 24)), box, STRIDE)


def test_a_hot_cell_lands_on_its_place_in_the_original():
    # original px (x 320..352, y 96..128) of the astronaut -> input x 56..60, y 12..16: cell (3, 14)
    heat = np.zeros((16, 24), np.float32)
    heat[3, 14] = 1.0
    shown = upsample(map_to_original(heat, Letterbox.of((512, 512), INPUT), STRIDE), 512, 512)
    y, x = np.unravel_index(np.argmax(shown), shown.shape)
    assert 96 <= y < 128 and 320 <= x < 352


def test_detections_in_original_known_boxes():
    box = Letterbox.of((512, 512), INPUT)  # original = (input - (16, 0)) * 8
    boxes = np.array(
        [
            [24, 16, 32, 24],  # inside the image -> (8 * 8, 16 * 8, 32 * 8, 24 * 8)
            [8, 8, 16, 8],  # half on the left padding -> x 16..24 kept -> x 0..64
            [0, 0, 10, 10],  # all padding -> dropped
            [70, 40, 20, 30],  # past the right edge (x 80) and the bottom -> clipped
        ],
        np.float32,
    )
    dets = Detections(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4, np.int64))
    out, scores, labels = in_original(dets, box)
    np.testing.assert_allclose(
        out, [[64, 128, 256, 192], [0, 64, 64, 64], [432, 320, 80, 192]], atol=1e-4
    )
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.6])
    assert labels.tolist() == [0, 0, 0]


def test_captions_use_the_metadata_there_is():
    world_like = {"session_id": 0, "time_of_day": "night", "weather": "rain", "route": "urban"}
    assert frame_caption(12, world_like) == "frame 12 · session 0 · night · rain · urban"
    assert frame_caption(3, METADATA.iloc[0].to_dict()) == "frame 3 · session drive-a"
    assert frame_caption(3, {"session_id": "d", "weather": float("nan")}) == "frame 3 · session d"
    assert frame_caption(5, {}) == "frame 5"


# the viewer on own images ----------------------------------------------------------------
def test_viewer_on_a_pool_shows_originals_with_one_class_and_no_ground_truth(source, ensemble):
    pool = Pool(source, METADATA)
    v = HeatmapViewer.from_ensemble(pool, ensemble, [0, 1, 2])
    assert v.maps.source is source and v.maps.letterboxed
    assert v.classes == ("person",) and v.class_dropdown.options == ("person",)
    assert v.class_name == "person"
    assert v.gt_checkbox.disabled and not v.show_gt
    with pytest.raises(ConfigError, match="show_gt needs a gt_fn"):
        v.show_gt = True
    assert v.image_fn(0).shape == (512, 512, 3)  # the original, not the 64 x 96 input
    assert png_size(v.png) == (512 + COLORBAR_PX, 512)  # shown at scale 1
    assert v.caption.value.startswith("frame 0 · session drive-a &nbsp;")
    assert v.maps.heatmap(0).shape == (1, 16, 16)  # square like the astronaut
    v.frame_id = 1
    assert png_size(v.png) == (600 + COLORBAR_PX, 400)
    assert v.maps.heatmap(1).shape == (1, 16, 24)  # no padding: the full map
    v.frame_id = 2
    assert png_size(v.png) == (400 + COLORBAR_PX, 100)
    assert "frame 2 · session drive-b · rain" in v.caption.value
    assert "None" not in v.caption.value and "nan" not in v.caption.value
    v.show_detections, v.score_threshold, v.source = True, 0.0, "member 1"
    boxes, _, _ = v.maps.detections(2)
    assert len(boxes) and (boxes[:, 0] + boxes[:, 2] <= 400 + 1e-3).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 100 + 1e-3).all()  # in the original's pixels


def test_large_originals_are_drawn_downscaled(source, ensemble):
    v = HeatmapViewer.from_ensemble(source, ensemble, [0, 1], max_size=256)
    assert png_size(v.png) == (256 + COLORBAR_PX, 256)
    v.frame_id = 1
    assert png_size(v.png) == (256 + COLORBAR_PX, round(400 * 256 / 600))
    assert v.maps.image(1).shape == (400, 600, 3)  # the provider keeps the full original


def test_detections_leave_in_original_pixels(source, ensemble, monkeypatch):
    def fake_decode(output, stride, k, threshold):  # detections at known input px
        if output.heatmap_logits.shape[-1] != 24:
            raise AssertionError("decode must see the input-sized maps")
        boxes = torch.tensor([[24.0, 16, 32, 24], [0, 0, 10, 10], [24, 26, 48, 12]])
        return [Detections(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0]))]

    monkeypatch.setattr(maps_module, "decode", fake_decode)
    maps = EnsembleMaps(source, ensemble)
    boxes, labels, scores = maps.detections(0)  # astronaut: (input - (16, 0)) * 8
    np.testing.assert_allclose(boxes, [[64, 128, 256, 192], [64, 208, 384, 96]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9, 0.7])  # the box on the padding is dropped
    assert labels.tolist() == [0, 0]
    boxes, _, _ = maps.detections(2)  # strip: (input - (0, 20)) / 0.24, clipped to 100 x 400
    np.testing.assert_allclose(boxes, [[100, 0, 400 / 3, 250 / 3], [100, 25, 200, 50]], atol=1e-3)


def test_heatmap_overlay_covers_the_whole_original(source, ensemble, monkeypatch):
    def image_mask(probs):  # MI 1 on the astronaut's input cells (columns 4..19), 0 on padding
        mask = torch.zeros(probs.shape[1:])  # (1, C, 16, 24)
        mask[..., 4:20] = 1.0
        return mask

    monkeypatch.setattr(maps_module, "mutual_information", image_mask)
    v = HeatmapViewer.from_ensemble(source, ensemble, [0], opacity=1.0, vmax=1.0)
    v.grey = False
    with Image.open(io.BytesIO(v.png)) as pil:
        shown = np.asarray(pil.convert("RGB"))[2:-2, 2 : 512 - 2].astype(int)  # image area
    top = np.round(np.array(matplotlib.colormaps["turbo"](1.0)[:3]) * 255)
    assert np.abs(shown - top).max() <= 2  # every pixel, left and right edges included


def test_class_names_come_from_the_ensemble_or_classes(source, ensemble):
    plain = list(ensemble.members)  # UNetDetectors carry no names
    with pytest.raises(ConfigError, match="carry no class names .* pass classes="):
        EnsembleMaps(source, plain)
    v = HeatmapViewer.from_ensemble(source, plain, [0], classes=("forklift",))
    assert v.class_dropdown.options == ("forklift",)
    with pytest.raises(ConfigError, match=r"differ from the ensemble's classes \['person'\]"):
        EnsembleMaps(source, ensemble, classes=("car",))
    with pytest.raises(ConfigError, match="1 classes but 2 class names"):
        EnsembleMaps(source, ensemble, classes=("person", "car"))
    with pytest.raises(ConfigError, match="expected a frame source"):
        EnsembleMaps(METADATA, ensemble)


# the selection explorer on own data --------------------------------------------------------
def own_selections() -> pd.DataFrame:
    """AL picks 0, 1; RANDOM 1, 2; string sessions, no time_of_day, one class."""
    return pd.DataFrame(
        {
            "frame_id": [0, 1, 1, 2],
            "method": ["AL", "AL", "RANDOM", "RANDOM"],
            "session_id": ["drive-a", "drive-a", "drive-a", "drive-b"],
            "forklift": [0.4, 0.1, 0.1, 0.3],
        }
    )


def test_explorer_without_time_of_day_and_with_string_sessions(source, ensemble):
    viewer = HeatmapViewer.from_ensemble(source, list(ensemble.members), [0, 1, 2],
                                         classes=("forklift",))  # fmt: skip
    ex = SelectionExplorer(own_selections(), viewer.maps.image, viewer=viewer, thumb_width=40)
    assert ex.classes == ("forklift",)  # from the viewer
    assert len(viewer.maps._cache) == 1  # thumbnails of originals need no forward pass
    assert ex.all_times == () and ex.time_select not in ex.children[2].children
    assert ex.all_sessions == ("drive-a", "drive-b")
    assert ex.visible == {"AL": [0, 1], "RANDOM": [1, 2]}
    thumbs = {fid: png_size(ex.thumbnail(fid)) for fid in (0, 1, 2)}
    assert thumbs == {0: (40, 40), 1: (40, 27), 2: (40, 10)}  # of the originals' shapes
    ex.session_select.value = ("drive-b",)
    assert ex.visible == {"AL": [], "RANDOM": [2]}
    note = ex.grid.children[1].children[1].children[0].children[2].value
    assert "drive-b" in note and "sdrive" not in note
    ex.sessions = ex.all_sessions
    ex.sort_by, ex.descending = "forklift", True
    assert ex.visible == {"AL": [0, 1], "RANDOM": [2, 1]}
    ex.button(2).click()
    assert viewer.frame_id == 2
    with pytest.raises(ConfigError, match="no 'time_of_day' column"):
        ex.times_of_day = ("day",)


def test_explorer_needs_only_frame_id_method_and_scores():
    image = lambda fid: np.zeros((8, 8, 3), np.uint8)  # noqa: E731
    table = own_selections().drop(columns="session_id")
    ex = SelectionExplorer(table, image, classes=("forklift",))
    assert ex.all_sessions == () and ex.visible == {"AL": [0, 1], "RANDOM": [1, 2]}
    partly = own_selections().assign(session_id=["drive-a", None, "drive-b", "drive-b"])
    ex = SelectionExplorer(partly, image, classes=("forklift",))
    assert ex.all_sessions == ("drive-a", "drive-b")  # a frame without a session still shows
    assert ex.visible == {"AL": [0, 1], "RANDOM": [1, 2]}
    ex.sessions = ("drive-b",)
    assert ex.visible == {"AL": [], "RANDOM": [1, 2]}
    with pytest.raises(ConfigError, match=r"lacks columns \['frame_id'\]"):
        SelectionExplorer(table.drop(columns="frame_id"), image, classes=("forklift",))
    with pytest.raises(ConfigError, match=r"lacks score columns for classes \['pallet'\]"):
        SelectionExplorer(table, image, classes=("forklift", "pallet"))
    with pytest.raises(ConfigError, match=r"no score columns; .*\(car, bicycle"):
        SelectionExplorer(table, image)  # no viewer, no names: the world's classes are absent
