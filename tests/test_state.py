"""Explorer state as data: every kind's state round-trips through JSON and recomputes the same
pictures; a record's views are recomputed without ipywidgets; old states still load."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from m1vision.errors import InvalidParameterError, RecordError
from m1vision.experiment import array_sha256, record, reproduce
from m1vision.io import MedicalImage, write_image
from m1vision.pipeline import Clahe, GaussianBlur, Pipeline
from m1vision.views import (
    EdgeSettings,
    EdgeView,
    ExplorerParams,
    TriPlanarParams,
    TriPlanarView,
    View,
    view_kinds,
)
from m1vision.views.export import export_png
from m1vision.widgets import (
    EdgeExplorer,
    Explorer,
    FunctionExplorer,
    TriPlanarExplorer,
    VolumeExplorer,
    WindowExplorer,
    explore,
    from_record,
)

AFFINE = [[0, 0, -0.9, 5.0], [0, -0.9, 0, 6.0], [3.0, 0, 0, 7.0], [0, 0, 0, 1.0]]


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    """A small CT-like volume in HU: a bright ellipsoid in air, brighter upwards."""
    z, y, x = np.mgrid[0:12, 0:40, 0:36].astype(np.float32)
    inside = (y - 20) ** 2 + (x - 18) ** 2 < 150 - (z - 6) ** 2
    return np.where(inside, 60.0 + 3 * z, -950.0).astype(np.float32)


@pytest.fixture(scope="module")
def ct(hu) -> MedicalImage:
    return MedicalImage(hu, spacing=(3.0, 0.9, 0.9), modality="CT", metadata={"affine": AFFINE})


def _edge(hu, ct):
    explorer = EdgeExplorer(
        np.ascontiguousarray(hu[6] * 10).astype(np.uint16),
        pipeline=Pipeline([Clahe(clip_limit=2.0)]),
    )
    explorer.set_params(high=90.0, low=40.0, view="curtain", curtain=0.4)
    return explorer, explorer.cache.image


def _triplanar(hu, ct):
    explorer = TriPlanarExplorer(ct, max_size=80)
    explorer.set_params(index=(3, 22, 10), center=40.0, width=400.0, edges=True, low=30.0)
    return explorer, ct


def _window(hu, ct):
    explorer = WindowExplorer(hu[6], preview_size=32, bins=64)
    explorer.controls["preset"].value = "soft_tissue"
    return explorer, hu[6]


def _volume(hu, ct):
    explorer = VolumeExplorer(hu, axis=1, index=15, window=(40.0, 400.0))
    explorer.edges.set_params(low=20.0, high=70.0, view="overlay")
    return explorer, hu


def _step(hu, ct):
    explorer = explore(GaussianBlur, hu[6], ksize=(1, 15, 2), sigma=(0.0, 5.0))
    explorer.controls["ksize"].value = 7
    explorer.controls["sigma"].value = 2.5
    return explorer, hu[6]


KINDS = {
    "EdgeExplorer": _edge,
    "TriPlanarExplorer": _triplanar,
    "WindowExplorer": _window,
    "VolumeExplorer": _volume,
    "FunctionExplorer": _step,
}


def displayed(explorer) -> list[np.ndarray]:
    """What the explorer's widgets show, decoded from their PNG bytes."""
    if isinstance(explorer, TriPlanarExplorer):
        widgets = list(explorer.image_widgets.values())
    elif isinstance(explorer, WindowExplorer):
        widgets = [explorer.image_widget, explorer.histogram_widget]
    elif isinstance(explorer, VolumeExplorer):
        widgets = [explorer.edges.image_widget]
    else:
        widgets = [explorer.image_widget]
    return [
        cv2.imdecode(np.frombuffer(bytes(w.value), np.uint8), cv2.IMREAD_UNCHANGED) for w in widgets
    ]


def hashes(pictures) -> list[str]:
    return [array_sha256(p) for p in pictures]


def test_every_explorer_kind_is_covered():
    assert sorted(KINDS) == view_kinds()


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_state_round_trips_through_json_and_shows_the_same_pictures(kind, hu, ct):
    explorer, image = KINDS[kind](hu, ct)
    state = explorer.state()
    assert (state["schema"], state["version"], state["kind"]) == ("m1vision.view", 1, kind)
    text = json.dumps(state)  # JSON-able as it is
    again = Explorer.from_state(json.loads(text), image)
    assert type(again) is type(explorer)
    assert again.state() == state  # the exact round trip
    # the pictures the pure view computes are those the widgets show, before and after
    assert hashes(explorer.view().pictures()) == hashes(displayed(explorer))
    assert hashes(again.view().pictures()) == hashes(displayed(explorer))
    # and the pure view alone, with no explorer, recomputes them from (image, state)
    assert hashes(View.from_state(json.loads(text), image).pictures()) == hashes(
        displayed(explorer)
    )


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_a_state_restores_only_its_own_explorer_class(kind, hu, ct):
    explorer, image = KINDS[kind](hu, ct)
    other = EdgeExplorer if kind != "EdgeExplorer" else TriPlanarExplorer
    with pytest.raises(RecordError, match=f"not a {other.__name__}"):
        other.from_state(explorer.state(), image)
    assert type(type(explorer).from_state(explorer.state(), image)) is type(explorer)


def test_a_plain_function_is_named_but_never_imported_from_a_state(hu):
    image = hu[6]
    explorer = explore(cv2.medianBlur, np.clip(image, 0, 255).astype(np.uint8), ksize=(1, 9, 2))
    explorer.controls["ksize"].value = 5
    state = json.loads(json.dumps(explorer.state()))
    assert state["function"] == {"name": "cv2.medianBlur"}
    source = explorer.view().array
    with pytest.raises(RecordError, match="never imports"):
        FunctionExplorer.from_state(state, source)
    with pytest.raises(RecordError, match=r"cv2\.GaussianBlur"):
        FunctionExplorer.from_state(state, source, func=cv2.GaussianBlur)
    again = FunctionExplorer.from_state(state, source, func=cv2.medianBlur)
    assert again.params == {"ksize": 5}
    assert hashes(again.view().pictures()) == hashes(displayed(explorer))


def test_a_medical_image_brings_its_own_geometry_a_bare_array_takes_the_states(hu, ct):
    explorer, _ = _triplanar(hu, ct)
    state = explorer.state()
    assert state["geometry"] == {"spacing": [3.0, 0.9, 0.9], "affine": AFFINE, "modality": "CT"}
    from_array = TriPlanarExplorer.from_state(state, hu)
    assert from_array.modality == "CT"
    assert np.array_equal(from_array.cache.affine, np.asarray(AFFINE))
    assert from_array.cache.letters == explorer.cache.letters
    assert hashes(from_array.view().pictures()) == hashes(displayed(explorer))


# -- the parts of a state ----------------------------------------------------------------------
def test_a_state_with_a_part_this_version_does_not_know_is_refused(hu, ct):
    state = _triplanar(hu, ct)[0].state()
    state["rulers"] = {"lines": []}
    with pytest.raises(RecordError, match=r"part\(s\) \['rulers'\].*newer"):
        View.from_state(state, hu)


BAD_STATES = {
    "newer version": ({"version": 99}, "version 99.*Upgrade m1vision"),
    "other schema": ({"schema": "m1vision.experiment"}, "expected 'm1vision.view'"),
    "unknown kind": ({"kind": "HistogramExplorer"}, "unknown view kind 'HistogramExplorer'"),
}


@pytest.mark.parametrize("case", list(BAD_STATES), ids=list(BAD_STATES))
def test_states_this_version_cannot_read_are_refused_by_name(case, hu):
    changes, match = BAD_STATES[case]
    state = {**EdgeView(hu[6], ExplorerParams(center=40.0, width=400.0)).state(), **changes}
    with pytest.raises(RecordError, match=match):
        View.from_state(state, hu[6])


class _Masked:
    """A kind made in a test: an edge view with a mask drawn over it (an overlay part and an
    array besides the image), registered only while the test runs."""

    @staticmethod
    def define():
        class MaskedView(EdgeView, kind="test-masked"):
            PARTS = (*EdgeView.PARTS, "overlay")

            def __init__(self, image, params=None, *, mask, opacity=0.5, **kwargs):
                super().__init__(image, params, **kwargs)
                self.mask, self.opacity = mask, float(opacity)

            def arrays(self):
                return {"mask": self.mask}

            def parts(self):
                return {**super().parts(), "overlay": {"opacity": self.opacity}}

            @classmethod
            def _from_parts(cls, parts, image, *, mask):
                return cls(image, parts["params"], mask=mask, **parts["overlay"])

            def pictures(self):
                from m1vision.draw import overlay_mask

                (base,) = super().pictures()
                return [overlay_mask(base, self.mask, alpha=self.opacity)]

        return MaskedView


def test_a_kind_with_its_own_part_and_array_is_recorded_and_replayed(hu, tmp_path):
    masked = _Masked.define()
    try:
        image = np.ascontiguousarray(hu[6])
        mask = (image > 0).astype(np.uint8)
        view = masked(image, {"center": 40.0, "width": 400.0, "view": "overlay"}, mask=mask,
                      opacity=0.3)  # fmt: skip
        write_image(tmp_path / "in" / "a.png", np.zeros((8, 8), np.uint8))
        path = record("masked", pipeline=Pipeline([GaussianBlur()]), inputs=tmp_path / "in",
                      out_dir=tmp_path / "experiments", explorers=[view])  # fmt: skip
        assert reproduce(path).ok
        entry = json.loads(path.read_text())["explorers"][0]
        assert entry["state"]["overlay"] == {"opacity": 0.3}
        again = View.from_state(entry["state"], image, mask=mask)
        assert hashes(again.pictures()) == entry["shown_sha256"]
        kept = path.parent / entry["arrays"]["mask"]["array"]
        np.save(kept, 1 - mask)
        assert [d.kind for d in reproduce(path).differences] == ["explorer-input"]
    finally:
        View._kinds.pop("test-masked")


# -- one settings type ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", [ExplorerParams, TriPlanarParams], ids=["edges", "planes"])
def test_both_views_share_one_checked_settings_type(params):
    assert issubclass(params, EdgeSettings)
    made = params(center=40, width=400, ksize=3, sigma=1, low=10, high=20)
    assert made.settings == EdgeSettings(center=40.0, width=400.0, ksize=3, sigma=1.0, low=10.0,
                                         high=20.0)  # fmt: skip


@pytest.mark.parametrize("params", [ExplorerParams, TriPlanarParams], ids=["edges", "planes"])
@pytest.mark.parametrize(
    ("bad", "match"),
    [({"ksize": 4}, "ksize must be odd"), ({"low": 30}, "low <= high"),
     ({"width": 0}, "width must be > 0")],
    ids=["even-ksize", "low-above-high", "zero-width"],
)  # fmt: skip
def test_both_views_refuse_the_same_bad_settings(params, bad, match):
    with pytest.raises(InvalidParameterError, match=match):
        params(**{"center": 40, "width": 400, "low": 10, "high": 20, **bad})


def test_the_planes_canny_settings_reach_their_edges(hu, ct):
    base = TriPlanarParams(index=(6, 20, 18), center=40.0, width=400.0, edges=True, low=5.0,
                           high=10.0, max_size=80)  # fmt: skip
    plain = TriPlanarView(ct, base).pictures()
    l2 = TriPlanarView(ct, base.replace(aperture=7, l2_gradient=True)).pictures()
    assert hashes(plain) != hashes(l2)


# -- records: the old format, and a replay without ipywidgets ----------------------------------
@pytest.fixture
def recorded(hu, ct, tmp_path):
    explorers = [KINDS[kind](hu, ct)[0] for kind in KINDS]
    write_image(tmp_path / "in" / "slice.png", explorers[0].cache.image)
    return record(
        "views",
        pipeline=explorers[0].to_pipeline(),
        inputs=tmp_path / "in",
        out_dir=tmp_path / "experiments",
        explorers=explorers,
    )


def _as_first_records(state: dict) -> dict:
    """The state as the first records wrote it: no schema or version, geometry at the top."""
    old = {k: v for k, v in state.items() if k not in ("schema", "version", "geometry")}
    if state["kind"] == "TriPlanarExplorer":
        old.update(state["geometry"])
    return old


def test_records_of_the_first_format_still_reproduce_and_restore(recorded):
    data = json.loads(recorded.read_text())
    data["explorers"] = data["explorers"][:2]  # the first records kept these two kinds
    for entry in data["explorers"]:
        entry["state"] = _as_first_records(entry["state"])
    assert "spacing" in data["explorers"][1]["state"]
    recorded.write_text(json.dumps(data))
    result = reproduce(recorded)
    assert result.ok, str(result)
    assert type(from_record(recorded, 0)) is EdgeExplorer
    tri = TriPlanarExplorer.from_record(recorded, 1)
    assert tri.state()["geometry"]["affine"] == AFFINE


BLOCKED = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoWidgets(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("ipywidgets", "ipyevents"):
                raise ImportError(f"{name} is not installed here")
            return None

    sys.meta_path.insert(0, NoWidgets())
    try:
        import ipywidgets  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True

    from m1vision.experiment import reproduce, load_record
    from m1vision.views import View
    from m1vision.views.export import export_png
    import numpy as np
    from pathlib import Path

    record_path = Path(sys.argv[1])
    result = reproduce(record_path)
    data = load_record(record_path)
    exported = []
    for i, entry in enumerate(data["explorers"]):
        array = np.load(record_path.parent / entry["array"])
        view = View.from_state(entry["state"], array)
        exported.append(str(export_png(view, record_path.parent / f"view{i}.png")))
    print(json.dumps({
        "blocked": blocked,
        "ok": result.ok,
        "differences": [str(d) for d in result.differences],
        "exported": exported,
        "widgets_loaded": sorted(m for m in sys.modules if m.partition(".")[0]
                                 in ("ipywidgets", "ipyevents", "m1vision.widgets")
                                 or m.startswith("m1vision.widgets")),
    }))
    """
)


def test_reproduce_recomputes_every_kept_view_without_ipywidgets(recorded):
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(recorded)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["blocked"]  # the interpreter really had no ipywidgets
    assert found["ok"], found["differences"]
    assert found["widgets_loaded"] == []
    # the exports made there are the pictures the explorers showed here
    data = json.loads(recorded.read_text())
    assert len(found["exported"]) == len(KINDS)
    for path, entry in zip(found["exported"], data["explorers"], strict=True):
        picture = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        view = View.from_state(entry["state"], np.load(recorded.parent / entry["array"]))
        assert np.array_equal(picture, view.picture())
        if len(entry["shown_sha256"]) == 1:
            assert array_sha256(picture) == entry["shown_sha256"][0]


def test_a_changed_state_of_any_kind_is_a_difference(recorded):
    data = json.loads(recorded.read_text())
    data["explorers"][2]["state"]["params"]["center"] = 400.0  # the window view
    recorded.write_text(json.dumps(data))
    result = reproduce(recorded)
    assert [(d.kind, d.subject) for d in result.differences] == [
        ("explorer-differs", "explorer 2 (WindowExplorer)")
    ]


def test_export_takes_its_picture_from_the_view(hu, ct, tmp_path):
    explorer, _ = _triplanar(hu, ct)
    from_explorer = explorer.export_png(tmp_path / "explorer.png")
    from_view = export_png(TriPlanarView.from_state(explorer.state(), hu), tmp_path / "view.png")
    assert from_explorer.read_bytes() == from_view.read_bytes()
    with pytest.raises(TypeError, match=r"an explorer or an m1vision\.views\.View"):
        export_png(object(), tmp_path / "nothing.png")


def _imported_names(module) -> set[str]:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):  # function-level imports too
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _view_modules():
    import importlib
    import pkgutil

    import m1vision.views

    names = ["m1vision._record", "m1vision.views"] + [
        info.name for info in pkgutil.iter_modules(m1vision.views.__path__, "m1vision.views.")
    ]
    return {name: importlib.import_module(name) for name in names}


@pytest.mark.parametrize("name", sorted(_view_modules()), ids=sorted(_view_modules()))
def test_the_views_and_the_record_format_import_no_widget_and_nothing_above(name):
    above = ("ipywidgets", "ipyevents", "m1vision.widgets", "m1vision.experiment")
    imported = _imported_names(_view_modules()[name])
    assert not {n for n in imported if n.startswith(above)}
