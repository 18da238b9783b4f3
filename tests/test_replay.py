"""Explorer views in experiment records: kept, reproduced exactly, restored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from m1vision.errors import RecordError
from m1vision.experiment import record, reproduce
from m1vision.io import write_image
from m1vision.pipeline import Clahe, Pipeline
from m1vision.planes import PLANES
from m1vision.widgets import EdgeExplorer, TriPlanarExplorer, from_record


class _CT:
    def __init__(self, pixels):
        self.pixels, self.spacing, self.window, self.modality = pixels, (3.0, 0.9, 0.9), None, "CT"
        self.metadata = {"affine": [[0, 0, -0.9, 5], [0, -0.9, 0, 6], [3.0, 0, 0, 7], [0, 0, 0, 1]]}


@pytest.fixture
def views():
    z, y, x = np.mgrid[0:12, 0:40, 0:36].astype(np.float32)
    hu = np.where((y - 20) ** 2 + (x - 18) ** 2 < 150 - (z - 6) ** 2, 60.0 + 3 * z, -950.0)
    tri = TriPlanarExplorer(_CT(hu.astype(np.float32)), max_size=80)
    tri.set_params(index=(3, 22, 10), center=40.0, width=400.0, edges=True, low=30.0)
    slice_ = np.ascontiguousarray(hu[6] * 10).astype(np.uint16)
    edge = EdgeExplorer(slice_, pipeline=Pipeline([Clahe(clip_limit=2.0)]))
    edge.set_params(high=90.0, low=40.0, view="curtain", curtain=0.4)
    return edge, tri


@pytest.fixture
def recorded(views, tmp_path):
    edge, tri = views
    write_image(tmp_path / "in" / "slice.png", edge.cache.image)
    path = record(
        "views",
        pipeline=edge.to_pipeline(),
        inputs=tmp_path / "in",
        out_dir=tmp_path / "experiments",
        explorers=[edge, tri],
    )
    return path


def test_a_record_keeps_each_views_state_and_reproduces_it_exactly(recorded):
    data = json.loads(recorded.read_text())
    kinds = [entry["state"]["kind"] for entry in data["explorers"]]
    assert kinds == ["EdgeExplorer", "TriPlanarExplorer"]
    assert len(data["explorers"][1]["shown_sha256"]) == 3  # one per plane
    result = reproduce(recorded)
    assert result.ok, str(result)


def test_from_record_restores_the_exact_view(views, recorded):
    edge, tri = views
    again_edge = EdgeExplorer.from_record(recorded, 0)
    again_tri = TriPlanarExplorer.from_record(recorded, 1)
    assert again_edge.params == edge.params
    assert bytes(again_edge.image_widget.value) == bytes(edge.image_widget.value)
    assert again_tri.params == tri.params
    for plane in PLANES:
        assert np.array_equal(again_tri.picture(plane), tri.picture(plane))
    assert type(from_record(recorded, 1)) is TriPlanarExplorer


def test_a_changed_view_state_is_a_difference(recorded):
    data = json.loads(recorded.read_text())
    data["explorers"][1]["state"]["params"]["index"] = [4, 22, 10]
    recorded.write_text(json.dumps(data))
    result = reproduce(recorded)
    assert not result.ok
    assert [d.kind for d in result.differences] == ["explorer-differs"]
    assert "TriPlanarExplorer" in result.differences[0].subject


def test_a_changed_view_array_is_named(recorded):
    data = json.loads(recorded.read_text())
    path = recorded.parent / data["explorers"][0]["array"]
    array = np.load(path)
    array[0, 0] += 1
    np.save(path, array)
    result = reproduce(recorded)
    assert [d.kind for d in result.differences] == ["explorer-input"]


BAD = {
    "plain function pipeline": (
        lambda img: [EdgeExplorer(img, pipeline=lambda x: x)],
        "plain function",
    ),
    "not an explorer": (lambda img: [object()], "cannot record a object"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_views_that_cannot_be_recorded_are_refused_before_anything_runs(case, tmp_path):
    img = np.zeros((16, 16), np.uint8)
    write_image(tmp_path / "in" / "a.png", img)
    make, match = BAD[case]
    with pytest.raises(RecordError, match=match):
        record(
            "bad",
            pipeline=Pipeline([Clahe()]),
            inputs=tmp_path / "in",
            out_dir=tmp_path / "experiments",
            explorers=make(img),
        )
    assert not (tmp_path / "experiments").exists()


def test_from_record_with_the_wrong_class_or_index(recorded):
    with pytest.raises(RecordError, match="not a EdgeExplorer"):
        EdgeExplorer.from_record(recorded, 1)
    with pytest.raises(RecordError, match="index must be 0 to 1"):
        from_record(recorded, 2)
