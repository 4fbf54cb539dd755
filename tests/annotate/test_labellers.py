"""The labeller registry (``alkit.annotate.labellers``)."""

from __future__ import annotations

import pytest

from alkit.annotate.labellers import (
    LABELLERS,
    LabellerRequest,
    make_labeller,
    register_labeller,
)
from alkit.annotate.oracle import OracleLabeller
from alkit.annotate.tool import ToolLabeller
from alkit.data.labels import CostModel
from alkit.errors import ConfigError
from tests.fakeworld import FakeWorld

WORLD = FakeWorld(min_boxes=1)


def test_names_make_their_labellers(tmp_path):
    assert {"oracle", "labelstudio", "coco"} <= set(LABELLERS)
    request = LabellerRequest(WORLD, CostModel(), world=WORLD, export_dir=str(tmp_path))
    assert isinstance(make_labeller("oracle", request), OracleLabeller)
    tool = make_labeller("labelstudio", request)
    assert isinstance(tool, ToolLabeller) and tool.url == str(tmp_path)
    with pytest.raises(ConfigError, match="own data is labelled in a tool"):
        make_labeller("oracle", LabellerRequest(WORLD, CostModel()))
    with pytest.raises(ConfigError, match="labeller must be one of .*'coco'"):
        make_labeller("crowd", request)


def test_a_registered_labeller_is_made_by_name():
    made = []

    @register_labeller("test-crowd")
    def crowd(request):
        made.append(request)
        return OracleLabeller(request.world, request.cost)

    try:
        request = LabellerRequest(WORLD, CostModel(), world=WORLD)
        assert isinstance(make_labeller("test-crowd", request), OracleLabeller)
        assert made == [request]
    finally:
        LABELLERS.pop("test-crowd")
