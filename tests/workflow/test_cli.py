"""``python -m alkit world`` renders the montage; ``python -m alkit demo`` runs the A/B recipe."""

from pathlib import Path

import pytest
from PIL import Image

from alkit.cli import main


def test_world_writes_montage_and_prints_statistics(tmp_path: Path, capsys):
    assert main(["world", "--run-dir", str(tmp_path), "--sample", "20"]) == 0
    out = capsys.readouterr().out
    assert "Objects per frame in the pool" in out and "person" in out
    png = tmp_path / "world.png"
    with Image.open(png) as im:
        assert im.size[0] > 800 and im.size[1] > 500
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.slow
def test_demo_runs_the_ab_recipe_and_prints_the_seed_table(tmp_path: Path, capsys):
    run = tmp_path / "demo"
    assert main(["demo", "--profile", "tiny", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Difference to REFERENCE, night test set" in out
    for method in ("REFERENCE", "AL", "MANUAL", "RANDOM", "METADATA"):
        assert f"\n{method} " in out, method
    assert "95% confidence intervals" in out  # the tiny world's night test: no objects, no rows
    assert "not powered" in out and "python -m alkit experiment" in out
    report = Path(out.split("report: ")[1].split()[0])
    assert report.exists() and report.suffix == ".html"
    # a second demo finds every step cached and prints the same table
    assert main(["demo", "--profile", "tiny", "--run-dir", str(run)]) == 0
    again = capsys.readouterr().out
    assert "10_ab_test: cached" in again

    def tables(text: str) -> str:
        return text.split("Difference to REFERENCE", 1)[1].split("report: ")[0]

    assert tables(again) == tables(out)


def test_demo_reports_a_bad_parameter(tmp_path: Path, capsys):
    assert main(["demo", "--run-dir", str(tmp_path), "-p", "no_such_thing=1"]) == 1
    assert "no_such_thing" in capsys.readouterr().err
