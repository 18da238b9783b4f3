"""tools/run_notebooks.py stores the same widget ids for the same widgets, whatever random ids
the kernel gave them: re-running an unchanged notebook does not show up as changed."""

from __future__ import annotations

import importlib.util
import json
import random
import uuid

import nbformat
import pytest
from repo_paths import REPO

_spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)


def _notebook(seed: int) -> nbformat.NotebookNode:
    """One notebook's widgets as a kernel leaves them: a shown box with two sliders and their
    layouts, links between the sliders both ways, a box never shown with its two labels, two
    identical widgets never shown, and a layout no one refers to; new random ids and another
    dict order for every seed."""
    rng = random.Random(seed)
    ids = {name: uuid.UUID(int=rng.getrandbits(128)).hex for name in (
        "box", "low", "high", "low_layout", "high_layout", "link", "back_link", "hidden_a",
        "hidden_b", "stray_layout", "hidden_box", "hidden_c", "hidden_d",
    )}  # fmt: skip

    def ref(name):
        return f"IPY_MODEL_{ids[name]}"

    state = {
        ids["box"]: {"model_name": "VBoxModel", "state": {"children": [ref("low"), ref("high")]}},
        ids["low"]: {"model_name": "IntSliderModel", "state": {"layout": ref("low_layout")}},
        ids["high"]: {"model_name": "IntSliderModel", "state": {"layout": ref("high_layout")}},
        ids["low_layout"]: {"model_name": "LayoutModel", "state": {"width": "100px"}},
        ids["high_layout"]: {"model_name": "LayoutModel", "state": {"width": "200px"}},
        ids["link"]: {
            "model_name": "LinkModel",
            "state": {"source": [ref("low"), "value"], "target": [ref("high"), "value"]},
        },
        ids["back_link"]: {
            "model_name": "LinkModel",
            "state": {"source": [ref("high"), "value"], "target": [ref("low"), "value"]},
        },
        ids["hidden_box"]: {
            "model_name": "HBoxModel",
            "state": {"children": [ref("hidden_c"), ref("hidden_d")]},
        },
        ids["hidden_c"]: {"model_name": "LabelModel", "state": {"value": "c"}},
        ids["hidden_d"]: {"model_name": "LabelModel", "state": {"value": "d"}},
        ids["hidden_a"]: {"model_name": "LabelModel", "state": {"value": "same"}},
        ids["hidden_b"]: {"model_name": "LabelModel", "state": {"value": "same"}},
        ids["stray_layout"]: {"model_name": "LayoutModel", "state": {"width": "300px"}},
    }
    items = list(state.items())
    rng.shuffle(items)
    nb = nbformat.v4.new_notebook()
    output = nbformat.v4.new_output(
        "display_data",
        data={"application/vnd.jupyter.widget-view+json": {"model_id": ids["box"]}},
    )
    cell = nbformat.v4.new_code_cell("box", outputs=[output])
    cell["id"] = "shows-the-box"  # new cells get random ids too
    nb.cells.append(cell)
    nb.metadata["widgets"] = {run_notebooks._WIDGET_STATE: {"state": dict(items)}}
    return nb


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5], ids=lambda s: f"seed-{s}")
def test_the_same_widgets_get_the_same_ids_whatever_their_random_ones(seed):
    reference = nbformat.writes(run_notebooks._stable_widget_ids(_notebook(0)))
    again = nbformat.writes(run_notebooks._stable_widget_ids(_notebook(seed)))
    assert nbformat.writes(_notebook(0)) != nbformat.writes(_notebook(seed))  # ids differ
    state = json.loads(again)["metadata"]["widgets"][run_notebooks._WIDGET_STATE]["state"]
    assert sorted(state) == [f"{n:032x}" for n in range(13)]
    assert again == reference
