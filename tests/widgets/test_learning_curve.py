"""LearningCurve: a metric against labelled frames per method, per class."""

from __future__ import annotations

import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit_widgets import LearningCurve, learning_curve_figure
from alkit_widgets.learning_curve import curve_points
from alkit_widgets.render import png_size


def curves() -> pd.DataFrame:
    rows = []
    for method, gain in (("AL", 0.10), ("RANDOM", 0.04), ("MANUAL", 0.06)):
        for rnd, frames in enumerate((100, 150, 200)):
            for split in range(3):
                for cls, base in (("person", 0.3), ("bicycle", 0.2)):
                    for metric in ("wMAP", "mAP_large"):
                        value = base + gain * rnd + 0.01 * split
                        rows.append((method, rnd, frames, cls, metric, value))
    columns = ["method", "round", "labelled_frames", "class", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def test_points_average_the_repeats():
    points = curve_points(curves(), "person", "wMAP")
    al = points[points.method == "AL"]
    assert al.labelled_frames.tolist() == [100, 150, 200]
    assert al["mean"].tolist() == pytest.approx([0.31, 0.41, 0.51])
    assert (al.n == 3).all() and al["std"].tolist() == pytest.approx([0.01] * 3)


def test_figure_has_one_line_per_method():
    ax = learning_curve_figure(curves(), "bicycle", "mAP_large").axes[0]
    assert [line.get_label() for line in ax.lines] == ["AL", "MANUAL", "RANDOM"]
    assert ax.get_xlabel() == "labelled frames" and "bicycle" in ax.get_ylabel()
    ax = learning_curve_figure(curves(), "person", "wMAP", methods=("AL",)).axes[0]
    assert len(ax.lines) == 1


def test_widget_switches_class_and_metric():
    curve = LearningCurve(curves())
    assert curve.class_name == "person" and curve.metric == "wMAP"
    width, height = png_size(curve.png)
    assert 400 <= width and 250 <= height < width  # readable, wider than tall
    person = curve.png
    curve.class_dropdown.value = "bicycle"
    assert curve.class_name == "bicycle" and curve.png != person
    bicycle = curve.png
    curve.metric = "mAP_large"
    assert curve.metric_dropdown.value == "mAP_large" and curve.png != bicycle
    with pytest.raises(
        ConfigError, match=r"unknown class_name 'truck'; have \['person', 'bicycle'\]"
    ):
        curve.class_name = "truck"


def test_bad_frames_raise_precise_errors():
    with pytest.raises(ConfigError, match=r"lack columns \['labelled_frames'\]"):
        LearningCurve(curves().drop(columns="labelled_frames"))
    with pytest.raises(ConfigError, match="'value' must be numeric"):
        LearningCurve(curves().assign(value="x"))
    with pytest.raises(ConfigError, match="learning curves are empty"):
        LearningCurve(curves().iloc[:0])
    with pytest.raises(ConfigError, match="no rows for class 'person' and metric 'AP'"):
        learning_curve_figure(curves(), "person", "AP")
