"""HeatmapViewer: headless, by setting traits and asserting state and rendered PNGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from alkit.data.classes import CLASSES
from alkit.detector.network import Detections, DetectorConfig, UNetDetector
from alkit.errors import ConfigError
from alkit.sim import World, experiment_world
from alkit_widgets import HeatmapViewer
from alkit_widgets.render import png_size

H, W, h, w, M = 32, 48, 8, 12, 3
C = len(CLASSES)
FRAMES = [3, 7, 11]


def image_fn(fid: int) -> np.ndarray:
    return np.random.default_rng(fid).integers(0, 255, (H, W, 3), dtype=np.uint8)


def heatmap_fn(fid: int) -> np.ndarray:
    return np.random.default_rng((fid, 1)).random((C, h, w), dtype=np.float32) * 0.6


def member_probs_fn(fid: int) -> np.ndarray:
    return np.random.default_rng((fid, 2)).random((M, C, h, w), dtype=np.float32)


def gt_fn(fid: int):
    return np.array([[2.0, 3.0, 10.0, 12.0], [20, 5, 8, 8]]), np.array([2, 0])


def detections_fn(fid: int) -> Detections:
    return Detections(torch.tensor([[4.0, 4.0, 9.0, 9.0]]), torch.tensor([0.8]), torch.tensor([2]))


def image_area(png: bytes, scale: int) -> np.ndarray:
    """The frame's part of a rendered PNG ``(H * scale, W * scale, 3)`` (the colour bar cut)."""
    with Image.open(io.BytesIO(png)) as pil:
        pixels = np.asarray(pil.convert("RGB"))
    return pixels[: H * scale, : W * scale]


def viewer(**kwargs) -> HeatmapViewer:
    args = dict(gt_fn=gt_fn, detections_fn=detections_fn, member_probs_fn=member_probs_fn)
    return HeatmapViewer(FRAMES, image_fn, heatmap_fn, **{**args, **kwargs})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()  # tiny convs on a busy machine: one thread is fastest
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_constructs_on_first_frame_with_png_of_the_documented_size():
    v = viewer(scale=3)
    assert v.frame_id == 3 and v.index == 0 and v.class_name == "car" and v.source == "MI"
    assert v.frame_slider.max == 2
    width, height = png_size(v.png)
    assert height == H * 3  # the frame, scaled 3x, beside a colour bar
    assert width - png_size(viewer(scale=1).png)[0] == W * 2
    assert v.sources == ("MI", "mean p", "member 0", "member 1", "member 2")
    assert v.n_members == M  # asked of member_probs_fn
    assert "frame 3" in v.caption.value and v.status.value == ""


def test_class_frame_and_opacity_change_the_png_and_stay_linked_to_controls():
    v = viewer()
    first = v.png
    v.class_dropdown.value = "person"
    assert v.class_name == "person" and v.png != first
    by_class = v.png
    v.frame_slider.value = 2
    assert v.frame_id == 11 and v.png != by_class
    v.frame_id = 7
    assert v.index == 1 and v.frame_slider.value == 1 and "frame 7" in v.caption.value
    before = image_area(v.png, scale=4)
    v.opacity = 0.9
    assert v.opacity_slider.value == 0.9
    grey = np.repeat(np.repeat(image_fn(7).mean(axis=2), 4, 0), 4, 1)[..., None]  # (H*4, W*4, 1)
    # a more opaque map hides more of the frame beneath it
    away = [np.abs(a.astype(float) - grey).mean() for a in (before, image_area(v.png, scale=4))]
    assert away[1] > away[0] + 10


def test_boxes_toggles_and_score_threshold():
    v = viewer()
    assert v.show_gt and v.gt_checkbox.value  # on by default when there is a gt_fn
    with_gt = v.png
    v.gt_checkbox.value = False
    assert not v.show_gt and v.png != with_gt
    plain = v.png
    v.show_gt = True
    assert v.png == with_gt  # rendering is deterministic
    v.show_gt = False
    v.detections_checkbox.value = True
    assert v.show_detections and v.png != plain
    v.score_threshold = 0.9  # above the only detection's 0.8
    assert v.png == plain


def test_member_and_mean_sources_show_probability_maps():
    v = viewer()
    mi = v.png
    v.source = "member 1"
    heat, vmax, label = v.current_map()
    np.testing.assert_allclose(heat, member_probs_fn(3)[1, 0])
    assert vmax == 1.0 and "member 1" in label and v.png != mi
    v.source_dropdown.value = "mean p"
    np.testing.assert_allclose(v.current_map()[0], member_probs_fn(3)[:, 0].mean(0), rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown map source 'member 3'"):
        v.source = "member 3"


def test_grey_toggle_and_without_optional_providers():
    v = HeatmapViewer([5], image_fn, heatmap_fn)
    assert v.sources == ("MI",) and v.gt_checkbox.disabled and v.frame_slider.disabled
    v.opacity = 0.0  # the frame alone
    area = image_area(v.png, scale=4)
    assert (area[..., 0] == area[..., 1]).all() and (area[..., 1] == area[..., 2]).all()  # grey
    v.grey = False
    area = image_area(v.png, scale=4).astype(int)
    want = np.repeat(np.repeat(image_fn(5), 4, 0), 4, 1)  # the frame's own colours
    assert np.abs(area - want).mean() < 3
    with pytest.raises(ConfigError, match="show_gt needs a gt_fn"):
        v.show_gt = True
    with pytest.raises(ConfigError, match="pass member_probs_fn"):
        v.source = "member 0"


def test_bad_settings_raise_precise_errors():
    with pytest.raises(ConfigError, match="at least one frame id"):
        HeatmapViewer([], image_fn, heatmap_fn)
    with pytest.raises(ConfigError, match=r"duplicate frame ids \[3\]"):
        HeatmapViewer([3, 4, 3], image_fn, heatmap_fn)
    with pytest.raises(ConfigError, match="heatmap_fn must be callable"):
        HeatmapViewer([3], image_fn, "maps")
    with pytest.raises(ConfigError, match="unknown class 'truck'"):
        viewer(class_name="truck")
    v = viewer()
    with pytest.raises(ValueError, match="frame 99 is not among this viewer's 3 frames"):
        v.frame_id = 99
    with pytest.raises(ConfigError, match=r"opacity must be in \[0, 1\]"):
        v.opacity = 1.5


def test_bad_provider_arrays_name_the_frame():
    with pytest.raises(ValueError, match="frame 3: heatmap_fn returned 3 class maps but 5 classes"):
        HeatmapViewer(FRAMES, image_fn, lambda f: np.zeros((3, h, w)))
    with pytest.raises(ValueError, match=r"frame 3: heatmap_fn returned shape \(8, 12\)"):
        HeatmapViewer(FRAMES, image_fn, lambda f: np.zeros((h, w)))
    with pytest.raises(ValueError, match=r"frame 3: image_fn: expected an \(H, W, 3\)"):
        HeatmapViewer(FRAMES, lambda f: np.zeros((H, W, 4), np.uint8), heatmap_fn)
    with pytest.raises(ValueError, match="frame 3: map shape .* does not match image"):
        HeatmapViewer(FRAMES, image_fn, lambda f: np.zeros((C, w, h)))
    with pytest.raises(ValueError, match="frame 3: heatmap_fn returned NaN"):
        HeatmapViewer(FRAMES, image_fn, lambda f: np.full((C, h, w), np.nan))
    with pytest.raises(
        ValueError, match=r"frame 3: member_probs_fn returned shape \(3, 2, 8, 12\)"
    ):
        viewer(member_probs_fn=lambda f: np.zeros((M, 2, h, w)))


def test_a_bad_later_frame_raises_and_shows_the_error():
    def heat(fid: int) -> np.ndarray:
        return heatmap_fn(fid) if fid != 11 else np.zeros((C + 1, h, w))

    def boxes(fid: int):
        return gt_fn(fid) if fid != 7 else (np.zeros((1, 3)), np.zeros(1, np.int64))

    v = HeatmapViewer(FRAMES, image_fn, heat, gt_fn=boxes)
    with pytest.raises(ValueError, match="frame 11: heatmap_fn returned 6 class maps"):
        v.frame_id = 11
    assert "frame 11" in v.status.value
    v.frame_id = 3
    assert v.status.value == ""
    with pytest.raises(ValueError, match=r"frame 7: gt_fn boxes must be \(N, 4\)"):
        v.frame_id = 7


def test_plain_tuple_detections_in_either_order():
    boxes = np.array([[4.0, 4.0, 9.0, 9.0]])
    a = viewer(detections_fn=lambda f: (boxes, np.array([2]), np.array([0.8])))
    b = viewer(detections_fn=lambda f: (boxes, np.array([0.8]), np.array([2])))
    c = viewer()  # a Detections
    for v in (a, b, c):
        v.show_detections = True
    assert a.png == b.png == c.png


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=0, initial=1, pool=2, test=1))


@pytest.fixture(scope="module")
def members() -> list[UNetDetector]:
    torch.manual_seed(0)
    config = DetectorConfig(width=4, depth=2, stride=4, head_width=8)
    return [UNetDetector(config).eval() for _ in range(2)]


def test_from_ensemble_computes_maps_on_demand(world, members):
    frames = [100, 101, 250]
    v = HeatmapViewer.from_ensemble(world, members, frames, cache_size=2)
    assert v.sources == ("MI", "mean p", "member 0", "member 1")
    maps = v.maps(100)
    assert maps.mi.shape == (C, 24, 40) and maps.member_probs.shape == (2, C, 24, 40)
    assert 0 <= maps.mi.min() and maps.mi.max() <= np.log(2) + 1e-6
    assert v.maps(100) is maps  # cached
    assert png_size(v.png)[1] == 96 * 4  # the quick world's 96 x 160 frame at scale 4
    assert "session 1" in v.caption.value
    first = v.png
    v.class_name = "person"
    assert v.png != first
    v.show_detections = True
    v.score_threshold = 0.0
    v.source = "member 1"
    v.frame_id = 250
    assert "frame 250" in v.caption.value and len(v.maps._cache) == 2


def test_from_ensemble_rejects_mismatched_members(world, members):
    with pytest.raises(ConfigError, match="members output 5 classes but 2 class names"):
        HeatmapViewer.from_ensemble(world, members, [100], classes=("car", "person"))
    other = UNetDetector(DetectorConfig(width=8, depth=2, stride=4, head_width=8))
    with pytest.raises(ConfigError, match="ensemble member 2 has config"):
        HeatmapViewer.from_ensemble(world, [*members, other], [100])
    with pytest.raises(ConfigError, match="at least one member"):
        HeatmapViewer.from_ensemble(world, [], [100])
