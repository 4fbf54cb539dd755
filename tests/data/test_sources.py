"""Pool sources over own data (alkit.data.sources, alkit.data.video) on real photographs."""

from __future__ import annotations

import hashlib
import math
import pickle
import shutil

import av
import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from alkit.data import video
from alkit.data.coco import read_image
from alkit.data.datasets import VirtualFrames, collate_frames
from alkit.data.letterbox import Letterbox
from alkit.data.sources import ImageSource, open_pool, stable_frame_id
from alkit.errors import ConfigError, DataError
from tests.photos import photo_folder, photo_video

SIZE = (96, 160)  # (H, W) model input
N_FRAMES, FPS = 24, 12  # the test video: 2 s at 12 frames per second


def expected_id(key: str) -> int:
    """The first 52 bits of sha256(key): 13 hex digits."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:13], 16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder pool of 9 photos in sessions drive_a, drive_b/part_1 and the top."""
    root = tmp_path_factory.mktemp("photos") / "pool"
    return root, photo_folder(root)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 24-frame 64x96 h264 MP4 (a key frame every 4 frames) and its frames decoded in full
    by PyAV directly: ``(path, (24, 64, 96, 3) uint8 decoded, (24, 64, 96, 3) uint8 encoded)``."""
    path = tmp_path_factory.mktemp("video") / "drives" / "cam_front.mp4"
    encoded = photo_video(path, n_frames=N_FRAMES, fps=FPS, size=(64, 96), gop=4)
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return path, decoded, encoded


def by_rel(pool, root) -> dict:
    """Metadata rows (named tuples) by path relative to ``root``."""
    prefix = f"{root.as_posix()}/"
    return {row.uri.removeprefix(prefix): row for row in pool.metadata.itertuples()}


# ---------------------------------------------------------------------------------------------
# frame ids


def test_stable_frame_id_is_52_bits_of_sha256():
    for key in ["drive_a/frame_000.png", "cam.mp4#17", "s3://bucket/x.jpg", ""]:
        assert stable_frame_id(key) == expected_id(key)
        assert 0 <= stable_frame_id(key) < 2**52
    assert stable_frame_id("a.png") != stable_frame_id("b.png")


def test_folder_ids_are_stable_across_opens_and_roots(folder, tmp_path):
    root, files = folder
    first, again = open_pool(str(root), SIZE), open_pool(str(root) + "/", SIZE)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(root, moved)
    there = open_pool(str(moved), SIZE)
    ids = {rel: row.frame_id for rel, row in by_rel(first, root).items()}
    assert ids == {f.rel: expected_id(f.rel) for f in files}  # the key: the relative path
    assert len(set(ids.values())) == len(files) == 9
    assert first.frame_ids == again.frame_ids == there.frame_ids
    assert there.metadata.uri.str.startswith(moved.as_posix()).all()


# ---------------------------------------------------------------------------------------------
# a folder of images


def test_folder_sessions_indices_and_sizes(folder):
    root, files = folder
    pool = open_pool(str(root), SIZE)
    assert list(pool.metadata.columns) == [
        "frame_id",
        "uri",
        "session_id",
        "frame_index",
        "height",
        "width",
    ]
    rows = by_rel(pool, root)
    assert set(rows) == {f.rel for f in files}  # .png .jpg .jpeg .JPG all read
    for f in files:
        row = rows[f.rel]
        assert row.uri == (root / f.rel).as_posix()
        assert row.session_id == f.session
        assert (row.height, row.width) == (f.height, f.width)
        assert row.frame_index == int(f.rel.rsplit("/", 1)[-1][6:9])  # frame_000.png -> 0
    assert set(pool.metadata.session_id) == {".", "drive_a", "drive_b/part_1"}
    sizes = {(f.height, f.width) for f in files}
    assert {(300, 400), (512, 512), (427, 640), (300, 451), (300, 256), (400, 600)} <= sizes


def test_frame_is_letterboxed_and_original_is_the_file(folder):
    root, files = folder
    pool = open_pool(str(root), SIZE)
    rows = by_rel(pool, root)
    coffee = next(f for f in files if (f.height, f.width) == (300, 400))  # a PNG crop
    fid = int(rows[coffee.rel].frame_id)
    source = pool.source
    # 300x400 into 96x160: scale min(96/300, 160/400) = 0.32 -> 96x128, 16 px black each side
    assert source.letterbox(fid) == Letterbox(300, 400, 96, 160)
    frame = source.frame(fid)
    assert frame.frame_id == fid and frame.image.shape == (96, 160, 3)
    assert frame.image.dtype == np.uint8
    assert (frame.image[:, :16] == 0).all() and (frame.image[:, 144:] == 0).all()
    want = np.asarray(Image.fromarray(coffee.image).resize((128, 96), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(frame.image[:, 16:144], want)
    assert frame.boxes.shape == (0, 4) and frame.labels.shape == (0,)
    assert frame.meta == {
        "frame_id": fid,
        "uri": (root / coffee.rel).as_posix(),
        "session_id": coffee.session,
        "frame_index": rows[coffee.rel].frame_index,
        "height": 300,
        "width": 400,
    }
    assert source.uri(fid) == (root / coffee.rel).as_posix()
    for f in files:
        original = source.original(int(rows[f.rel].frame_id))
        assert original.shape == (f.height, f.width, 3)
        if f.rel.endswith(".png"):  # lossless (the camera photo: grayscale PNG, read as RGB)
            np.testing.assert_array_equal(original, f.image)
        else:  # JPEG quality 90: the file's pixels as Pillow decodes them, near the photo
            with Image.open(f.path) as img:
                np.testing.assert_array_equal(original, np.asarray(img.convert("RGB")))
            assert np.abs(original.astype(int) - f.image).mean() < 5, f.rel


def test_source_pickles_into_dataloader_workers(folder, clip):
    root, _ = folder
    for url in [str(root), str(clip[0])]:
        pool = open_pool(url, SIZE)
        ids = pool.frame_ids[:6]
        want = np.stack([pool.source.frame(i).image for i in ids])  # opens readers here first
        clone = pickle.loads(pickle.dumps(pool.source))
        np.testing.assert_array_equal(clone.frame(ids[2]).image, want[2])
        loader = DataLoader(
            VirtualFrames(pool.source, ids),
            batch_size=2,
            num_workers=2,
            collate_fn=collate_frames,
        )
        batches = list(loader)
        got = np.concatenate([b["image"].mul(255).round().byte().numpy() for b in batches])
        np.testing.assert_array_equal(got, want.transpose(0, 3, 1, 2))
        assert sum((b["frame_id"].tolist() for b in batches), []) == ids


def test_memory_filesystem(folder, clip):
    root, files = folder
    fs = fsspec.filesystem("memory")
    for f in files[:3]:
        fs.pipe(f"/own/pool/{f.rel}", f.path.read_bytes())
    fs.pipe("/own/videos/cam.mp4", clip[0].read_bytes())
    pool = open_pool("memory://own/pool", SIZE)
    assert len(pool) == 3 and pool.metadata.uri.str.startswith("memory://own/pool/").all()
    local = by_rel(open_pool(str(root), SIZE), root)
    for f in files[:3]:  # same key, same id, same pixels as on disk
        assert int(local[f.rel].frame_id) in pool.frame_ids
        np.testing.assert_array_equal(
            pool.source.original(int(local[f.rel].frame_id)), read_image(str(f.path))
        )
    videos = open_pool("memory://own/videos/cam.mp4", SIZE, fps=4)
    np.testing.assert_array_equal(videos.source.original(videos.frame_ids[2]), clip[1][6])


# ---------------------------------------------------------------------------------------------
# videos


@pytest.mark.parametrize("fps", [None, 4, 5, 30])
def test_video_frames_sampled_at_fps(clip, fps):
    path, decoded, _ = clip
    pool = open_pool(str(path), SIZE, fps=fps)
    assert len(decoded) == N_FRAMES  # the file's frame count, decoded by PyAV directly
    if fps is None or fps >= FPS:
        want = list(range(N_FRAMES))
    else:  # the first frame at or after each k / fps seconds
        want = [i for i in sorted({math.ceil(k * FPS / fps) for k in range(N_FRAMES)}) if i < 24]
    meta = pool.metadata
    assert meta.frame_index.tolist() == want
    np.testing.assert_allclose(meta.time_s, np.array(want) / FPS, atol=1e-9)
    assert (meta.session_id == "cam_front.mp4").all()
    assert meta.uri.tolist() == [f"{path.as_posix()}#frame={i}" for i in want]
    assert pool.frame_ids == [expected_id(f"cam_front.mp4#{i}") for i in want]
    assert (meta.height == 64).all() and (meta.width == 96).all()


@pytest.mark.parametrize(
    "name, codec, rate, fps",
    [
        ("v.mkv", "h264", 12, 3),  # millisecond stamps: frame 4 at 0.333 s opens slot 1/3 s
        ("v.avi", "mpeg4", 10, 7),  # one tick per frame: stamps are exact
    ],
)
def test_fps_sampling_across_time_bases(tmp_path, name, codec, rate, fps):
    photo_video(tmp_path / name, n_frames=20, fps=rate, size=(32, 48), codec=codec, gop=5)
    pool = open_pool(str(tmp_path / name), SIZE, fps=fps)
    want = sorted({math.ceil(k * rate / fps - 1e-9) for k in range(20)} & set(range(20)))
    assert pool.metadata.frame_index.tolist() == want
    np.testing.assert_allclose(pool.metadata.time_s, np.array(want) / rate, atol=1e-3)


def test_video_frames_in_order_equal_random_access(clip, monkeypatch):
    path, decoded, encoded = clip
    pool = open_pool(str(path), SIZE)
    seeks = []
    seek = video.VideoReader._seek
    monkeypatch.setattr(
        video.VideoReader, "_seek", lambda self, i: seeks.append(i) or seek(self, i)
    )
    video.READERS.clear()
    in_order = [pool.source.original(fid) for fid in pool.frame_ids]
    assert seeks == [0]  # one seek to the start, then decoding forward
    np.testing.assert_array_equal(np.stack(in_order), decoded)
    video.READERS.clear()
    backwards = [read_image(uri) for uri in pool.metadata.uri[::-1]]
    np.testing.assert_array_equal(np.stack(backwards[::-1]), decoded)
    assert len(seeks) > N_FRAMES // 2
    # frame i is the i-th frame encoded (nearer to it than to its neighbours)
    for i, image in enumerate(in_order):
        err = [np.abs(image.astype(int) - encoded[j]).mean() for j in range(N_FRAMES)]
        assert int(np.argmin(err)) == i and err[i] < 6
    frame = pool.source.frame(pool.frame_ids[5])
    want = Letterbox(64, 96, *SIZE).image(decoded[5])  # 64x96 into 96x160: 96x144, 8 px pads
    np.testing.assert_array_equal(frame.image, want)
    assert (frame.image[:, :8] == 0).all() and frame.meta["time_s"] == pytest.approx(5 / FPS)
    with pytest.raises(DataError, match=r"cam_front\.mp4.*64x96.*labels say 60x96"):
        read_image(f"{path}#frame=3", (60, 96))
    with pytest.raises(DataError, match=r"has 24 frames; there is no frame 24"):
        read_image(f"{path}#frame=24")


def test_folder_of_videos_one_session_per_file(clip, tmp_path):
    root = tmp_path / "videos"
    (root / "day_2").mkdir(parents=True)
    shutil.copy(clip[0], root / "a.mp4")
    photo_video(root / "day_2" / "b.MKV", n_frames=6, fps=6, size=(48, 64), name="coffee")
    pool = open_pool(str(root), SIZE, fps=2)
    counts = pool.metadata.groupby("session_id").size().to_dict()
    assert counts == {"a.mp4": 4, "day_2/b.MKV": 2}  # 2 s and 1 s at 2 frames per second
    b = pool.metadata[pool.metadata.session_id == "day_2/b.MKV"]
    assert b.frame_index.tolist() == [0, 3] and b.width.tolist() == [64, 64]
    assert pool.metadata.frame_index.tolist()[:4] == [0, 6, 12, 18]
    assert b.uri.tolist() == [f"{(root / 'day_2' / 'b.MKV').as_posix()}#frame={i}" for i in (0, 3)]
    np.testing.assert_array_equal(pool.source.original(pool.frame_ids[1]), clip[1][6])


# ---------------------------------------------------------------------------------------------
# tables


def test_csv_table_with_relative_uris_and_extra_columns(folder, clip, tmp_path):
    root, files = folder
    shutil.copytree(root, tmp_path / "imgs")
    shutil.copy(clip[0], tmp_path / "cam.mp4")
    uris = [f"imgs/{f.rel}" for f in files[:4]] + ["cam.mp4#frame=7"]
    table = pd.DataFrame(
        {
            "uri": uris,
            "time_of_day": ["day", "night", "dusk", "night", "day"],
            "weather": ["rain", "clear", "fog", "clear", "clear"],
        }
    )
    table.to_csv(tmp_path / "pool.csv", index=False)
    pool = open_pool(str(tmp_path / "pool.csv"), SIZE)
    meta = pool.metadata
    assert pool.frame_ids == [expected_id(u) for u in uris]  # the uri as written
    assert meta.uri.tolist() == [(tmp_path / u).as_posix() for u in uris]
    assert meta.time_of_day.tolist() == table.time_of_day.tolist()
    assert meta.weather.tolist() == table.weather.tolist()
    # no session_id column: an image's folder, a video frame's video (as written)
    assert meta.session_id.tolist() == [u.rsplit("/", 1)[0] for u in uris[:4]] + ["cam.mp4"]
    assert meta.height.tolist()[:4] == [f.height for f in files[:4]] and meta.height.iat[4] == 64
    assert meta.frame_index.iat[4] == 7
    np.testing.assert_array_equal(pool.source.original(pool.frame_ids[4]), clip[1][7])
    assert pool.source.frame(pool.frame_ids[1]).meta["weather"] == "clear"
    assert len(pool.where({"time_of_day": ["night"]})) == 2


def test_parquet_table_ids_sizes_and_size_mismatch(folder, tmp_path):
    root, files = folder
    coffee = next(f for f in files if (f.height, f.width) == (300, 400))
    astronaut = next(f for f in files if f.rel == "drive_a/frame_000.png")
    table = pd.DataFrame(
        {
            "frame_id": [11, 12],
            "uri": [str(astronaut.path), str(coffee.path)],
            "session_id": ["s1", "s1"],
            "height": [512, 320],  # coffee is 300x400
            "width": [512, 400],
            "route": ["urban", "highway"],
        }
    )
    table.to_parquet(tmp_path / "pool.parquet", index=False)
    pool = open_pool(str(tmp_path / "pool.parquet"), SIZE)
    assert pool.frame_ids == [11, 12]
    assert pool.metadata.route.tolist() == ["urban", "highway"]
    assert pool.metadata.frame_index.tolist() == [0, 1]
    assert pool.source.letterbox(12) == Letterbox(320, 400, *SIZE)  # the table's word
    assert pool.source.frame(11).image.shape == (96, 160, 3)
    with pytest.raises(DataError, match=r"frame 12: image .*frame_001\.png is 300x400.*320x400"):
        pool.source.frame(12)


# ---------------------------------------------------------------------------------------------
# bad input


def test_unreadable_images_name_the_file_and_frame(folder, tmp_path):
    root, files = folder
    jpeg = next(f for f in files if f.rel.endswith(".jpg"))
    bad = tmp_path / "bad"
    (bad / "s").mkdir(parents=True)
    (bad / "s" / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    with pytest.raises(DataError, match=r"cannot read image .*s/garbage\.jpg"):
        open_pool(str(bad), SIZE)
    cut = tmp_path / "cut"
    cut.mkdir()
    data = jpeg.path.read_bytes()
    (cut / "half.jpg").write_bytes(data[: len(data) // 2])  # header fine, pixels cut off
    pool = open_pool(str(cut), SIZE)  # sizes come from the header
    fid = expected_id("half.jpg")
    with pytest.raises(DataError, match=rf"frame {fid}: cannot decode image .*cut/half\.jpg"):
        pool.source.frame(fid)


def test_unreadable_videos_name_the_file(clip, tmp_path):
    data = clip[0].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end
    with pytest.raises(DataError, match=r"cannot read video .*cut\.mp4"):
        open_pool(str(tmp_path / "cut.mp4"), SIZE)
    (tmp_path / "noise.avi").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(DataError, match=r"noise\.avi"):
        open_pool(str(tmp_path / "noise.avi"), SIZE)
    with pytest.raises(DataError, match=r"video file not found: .*gone\.mp4"):
        open_pool(str(tmp_path / "gone.mp4"), SIZE)


def test_empty_mixed_and_unknown_inputs(folder, clip, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no images or videos under .*empty"):
        open_pool(str(tmp_path / "empty"), SIZE)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("hi")
    (tmp_path / "notes" / ".hidden.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"no images or videos under .*notes"):
        open_pool(str(tmp_path / "notes"), SIZE)
    with pytest.raises(ConfigError, match=r"cannot read .*README\.txt"):
        open_pool(str(tmp_path / "notes" / "README.txt"), SIZE)
    with pytest.raises(DataError, match=r"no file or folder at .*nowhere"):
        open_pool(str(tmp_path / "nowhere"), SIZE)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(folder[1][0].path, mixed / "a.png")
    shutil.copy(clip[0], mixed / "b.mp4")
    with pytest.raises(ConfigError, match=r"both images \(1, e\.g\. a\.png\) and videos"):
        open_pool(str(mixed), SIZE)
    with pytest.raises(ConfigError, match=r"fps=2 applies only to videos"):
        open_pool(str(folder[0]), SIZE, fps=2)
    with pytest.raises(ConfigError, match=r"input_size"):
        open_pool(str(folder[0]), (96, 0))


def test_bad_tables(folder, tmp_path):
    files = folder[1]
    pd.DataFrame({"path": ["a.png"]}).to_csv(tmp_path / "no_uri.csv", index=False)
    with pytest.raises(DataError, match=r"no_uri\.csv has no 'uri' column; columns: \['path'\]"):
        open_pool(str(tmp_path / "no_uri.csv"), SIZE)
    twice = pd.DataFrame({"frame_id": [5, 5], "uri": [str(files[0].path), str(files[1].path)]})
    twice.to_parquet(tmp_path / "twice.parquet")
    with pytest.raises(DataError, match=rf"'{files[0].path}' and '{files[1].path}'.*frame id 5"):
        open_pool(str(tmp_path / "twice.parquet"), SIZE)
    half = pd.DataFrame({"uri": [str(files[0].path)], "width": [10]})
    half.to_csv(tmp_path / "half.csv", index=False)
    with pytest.raises(DataError, match=r"half\.csv has a 'width' column but no 'height'"):
        open_pool(str(tmp_path / "half.csv"), SIZE)
    gone = pd.DataFrame({"uri": ["missing.png"]})
    gone.to_csv(tmp_path / "gone.csv", index=False)
    with pytest.raises(DataError, match=r"image file not found: .*missing\.png"):
        open_pool(str(tmp_path / "gone.csv"), SIZE)


def test_colliding_ids_name_both_files(folder, monkeypatch):
    from alkit.data import sources

    monkeypatch.setattr(sources, "stable_frame_id", lambda key: 7)
    with pytest.raises(DataError, match=r"'frame_000\.png' and 'frame_001\.png' .* frame id 7"):
        open_pool(str(folder[0]), SIZE)
    with pytest.raises(DataError, match=r"frame id 7"):
        ImageSource(
            pd.DataFrame({"frame_id": [7, 7], "uri": ["a", "b"], "height": 1, "width": 1}), SIZE
        )
