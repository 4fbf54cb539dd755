"""ABTable and its pure functions: pivot, bold best per column, bars, test sets."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.experiments.tables import summary_table
from alkit_widgets import ABTable, ab_bar_figure, ab_table_html, ab_tidy_from_summary
from alkit_widgets.render import png_size

REL = "wMAP Δ%"
#: (method, class, metric) -> (mean, std)
VALUES = {
    ("AL", "person", REL): (12.0, 1.5),
    ("MANUAL", "person", REL): (4.0, 2.0),
    ("RANDOM", "person", REL): (1.0, 0.5),
    ("METADATA", "person", REL): (3.0, 1.0),
    ("AL", "bicycle", REL): (8.0, 1.0),
    ("MANUAL", "bicycle", REL): (8.0, 3.0),  # a tie: both bold
    ("RANDOM", "bicycle", REL): (-1.0, 0.5),
    ("METADATA", "bicycle", REL): (2.0, 1.0),
    ("AL", "person", "mAP_large"): (0.61, 0.01),
    ("MANUAL", "person", "mAP_large"): (0.64, 0.02),
    ("RANDOM", "person", "mAP_large"): (0.58, 0.01),
    ("METADATA", "person", "mAP_large"): (0.60, 0.01),
    ("REFERENCE", "person", "mAP_large"): (0.70, 0.02),  # higher, but not a candidate
}


def results(test_set: str | None = None) -> pd.DataFrame:
    rows = [
        {"method": m, "class": c, "metric": k, "mean": mean, "std": std}
        for (m, c, k), (mean, std) in VALUES.items()
    ]
    df = pd.DataFrame(rows)
    return df if test_set is None else df.assign(test_set=test_set)


def cell(table_html: str, method: str, cls: str, metric: str) -> str:
    pattern = (
        f"<td data-method='{method}' data-class='{cls}' data-metric='{metric}'[^>]*>(.*?)</td>"
    )
    found = re.search(pattern, table_html)
    assert found, (method, cls, metric)
    return found.group(1)


def test_best_value_per_column_is_bold_and_reference_is_not_a_candidate():
    html = ab_table_html(results())
    assert cell(html, "AL", "person", REL) == "<b>+12.0 ± 1.5</b>"
    assert cell(html, "MANUAL", "person", REL) == "+4.0 ± 2.0"
    assert cell(html, "AL", "bicycle", REL).startswith("<b>")
    assert cell(html, "MANUAL", "bicycle", REL).startswith("<b>")
    assert cell(html, "MANUAL", "person", "mAP_large") == "<b>0.640 ± 0.020</b>"
    assert cell(html, "REFERENCE", "person", "mAP_large") == "0.700 ± 0.020"
    assert cell(html, "REFERENCE", "person", REL) == "–"
    heads = re.findall(r"<th colspan='(\d)'[^>]*>(\w+)</th>", html)
    assert heads == [("2", "person"), ("1", "bicycle")]  # metrics grouped under their class
    metrics = re.findall(r"<th style='[^']*'>([^<]+)</th>", html)
    assert metrics[:4] == ["method", REL, "mAP_large", REL]
    order = re.findall(r"<tr><th[^>]*>(?:<i>)?(\w+)", html)[1:]  # after the header row
    assert order == ["AL", "MANUAL", "RANDOM", "METADATA", "REFERENCE"]
    plain = ab_table_html(results(), show_spread=False, lower_is_better=(REL,))
    assert "±" not in plain and cell(plain, "RANDOM", "bicycle", REL) == "<b>-1.0</b>"


def test_bar_figure_has_one_bar_per_method_and_class():
    fig = ab_bar_figure(results())
    ax = fig.axes[0]
    assert len(ax.patches) == 4 * 2  # four methods x two classes, REFERENCE left out
    assert [t.get_text() for t in ax.get_xticklabels()] == ["person", "bicycle"]
    with pytest.raises(ConfigError, match="no metric 'mAP_small'"):
        ab_bar_figure(results(), "mAP_small")


def test_widget_renders_table_and_bars_and_reacts_to_traits():
    table = ABTable(results())
    assert table.bar_metric == REL and "<b>+12.0 ± 1.5</b>" in table.html
    width, height = png_size(table.png)
    one = ABTable(results()[results()["class"] == "person"])
    assert png_size(one.png)[0] < width and png_size(one.png)[1] == height  # wider per class
    assert 300 <= height <= width  # a readable chart, wider than tall
    bars = table.png
    table.metric_dropdown.value = "mAP_large"
    assert table.bar_metric == "mAP_large" and table.png != bars
    table.show_spread = False
    assert "±" not in table.html and table.spread_checkbox.value is False
    with pytest.raises(ConfigError, match="no metric 'AP'"):
        table.bar_metric = "AP"


def test_test_sets_are_selectable():
    night = results("night")
    day = results("global").assign(mean=lambda d: d["mean"] * 0.5)
    both = pd.concat([night, day], ignore_index=True)
    table = ABTable(both)
    assert table.test_sets == ("night", "global") and table.test_set == "night"
    night_html = table.html
    table.test_set_dropdown.value = "global"
    assert table.test_set == "global" and table.html != night_html and "+6.0" in table.html
    with pytest.raises(ConfigError, match=r"hold test sets \['night', 'global'\]; pass"):
        ab_table_html(both)


def test_bad_frames_raise_precise_errors():
    with pytest.raises(ConfigError, match=r"lack columns \['mean'\]"):
        ABTable(results().drop(columns="mean"))
    with pytest.raises(ConfigError, match=r"repeat \(method, class, metric\) rows"):
        ABTable(pd.concat([results(), results().iloc[:1]]))
    with pytest.raises(ConfigError, match="must be numeric"):
        ABTable(results().assign(mean="high"))
    with pytest.raises(ConfigError, match="are empty"):
        ab_table_html(results().iloc[:0])
    table = ab_table_html(results().drop(columns="std"))  # std is optional
    assert "±" not in table


def test_tidy_from_alkit_summary():
    raw = [
        (method, split, "night", "person", metric, value + 0.01 * split)
        for split in range(3)
        for method, value in (("REFERENCE", 0.40), ("AL", 0.52), ("MANUAL", 0.44))
        for metric in ("wMAP", "mAP_large")
    ]
    columns = ["method", "split", "test_set", "class", "metric", "value"]
    tidy = ab_tidy_from_summary(summary_table(pd.DataFrame(raw, columns=columns)))
    assert set(tidy.metric) == {REL, "mAP_large"}
    al = tidy[(tidy.method == "AL") & (tidy.metric == REL)]["mean"].item()
    assert al == pytest.approx(100 * (0.53 - 0.41) / 0.41, rel=0.02)
    assert "REFERENCE" in set(tidy[tidy.metric == "mAP_large"].method)
    assert "<b>" in ab_table_html(tidy)
