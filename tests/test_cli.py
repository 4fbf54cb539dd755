"""``python -m alkit demo`` renders the montage and prints the pool's statistics."""

from pathlib import Path

from PIL import Image

from alkit.cli import main


def test_demo_writes_montage_and_prints_statistics(tmp_path: Path, capsys):
    assert main(["demo", "--run-dir", str(tmp_path), "--sample", "20"]) == 0
    out = capsys.readouterr().out
    assert "Objects per frame in the pool" in out and "person" in out
    png = tmp_path / "world.png"
    with Image.open(png) as im:
        assert im.size[0] > 800 and im.size[1] > 500
    assert not list(tmp_path.glob("*.tmp*"))
