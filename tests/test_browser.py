"""The edge explorer in a real browser: JupyterLab + headless Chromium, driven like a user.

A throw-away JupyterLab (tests/browser_support.py) serves a temporary copy of notebooks/, and
Playwright drives Debian's Chromium: open the notebook, Run > Run All Cells, check every cell
ran without error and the widgets rendered, then drag the *high* Canny threshold slider with
the mouse and check that the slider's readout and the picture the browser shows both change.

The same checks run on a small fixture notebook (an IntSlider labelled "high" driving an Image
of Canny edges, tests/fixtures/browser/slider_image.ipynb): if only the explorer case fails,
the explorer is at fault, not the browser set-up.

The tri-planar explorer (tests/fixtures/browser/triplanar.ipynb, a 512x512x40 CT volume) runs
in JupyterLab 4 and in Jupyter Notebook 7 (the same server): the widgets render, 20 slice
moves typed into the axial slider are timed from the key press to the new picture decoded in
the page (p50/p95 printed; with ``M1VISION_RECORD_LATENCY=1``, as ``make bench`` sets it, also
written to benchmarks/results/browser_latency.json, which ``make bench`` reports), a
click in the coronal picture moves the crosshair, and the arrow keys with the mouse over the
axial picture step its slice in both front ends (Notebook 7 keeps them from any slider).
A third case blocks the widget manager's front end: the explorer's static PNG must show
instead of a blank output.

Run: ``.venv/bin/python -m pytest tests/test_browser.py -m browser``. Failures leave a
screenshot, the server log and the browser console in the test's tmp_path. The screenshots of
the explorers are always saved to tmp_path; ``M1VISION_UPDATE_SCREENSHOT=1`` also replaces
docs/explorer.png (atomically) with the tri-planar explorer in JupyterLab, the README's picture.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_support import chromium_launch_options, start_lab, stop_lab
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from repo_paths import FIXTURES, REPO

from m1vision._atomic import atomic_write_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOKS = REPO / "notebooks"
FIXTURE_NOTEBOOK = FIXTURES / "browser" / "slider_image.ipynb"
SCREENSHOT = REPO / "docs" / "explorer.png"
UPDATE_SCREENSHOT = os.environ.get("M1VISION_UPDATE_SCREENSHOT") == "1"
# make bench sets this: the key-press latencies go into the benchmark results (a plain test
# run changes no tracked file).
RECORD_LATENCY = os.environ.get("M1VISION_RECORD_LATENCY") == "1"

# Every wait is bounded; the bounds are generous because the machines are small and shared.
WAIT_S = 180  # page load, kernel start, widget rendering, one slider update
RUN_ALL_S = 300  # the whole notebook (< 1 minute when the machine is idle)
VIEWPORT = {"width": 1400, "height": 1000}
# The explorer labels its Canny high-threshold slider exactly "high" (m1vision.widgets).
HIGH_LABEL = re.compile(r"^\s*high\s*$")

CASES = {
    # id: (path of the notebook in the served folder, is the README's explorer)
    "edge_explorer": ("notebooks/02_edge_explorer.ipynb", False),
    "fixture": ("fixture/slider_image.ipynb", False),
}


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of notebooks/ (and of the fixture notebook); always stopped."""
    scratch = tmp_path_factory.mktemp("browser")
    root = scratch / "root"
    shutil.copytree(
        NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    (root / "fixture").mkdir()
    for notebook in FIXTURE_NOTEBOOK.parent.glob("*.ipynb"):
        shutil.copy2(notebook, root / "fixture" / notebook.name)
    for name in TRIPLANAR_COPIES.values():  # one kernel and one document per front end
        shutil.copy2(FIXTURE_NOTEBOOK.parent / "triplanar.ipynb", root / name)
    server = start_lab(root, scratch / "home")
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**chromium_launch_options())
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    page.set_default_navigation_timeout(WAIT_S * 1000)
    page.console_lines = []
    page.on("console", lambda msg: page.console_lines.append(f"[{msg.type}] {msg.text}"))
    page.on("pageerror", lambda exc: page.console_lines.append(f"[pageerror] {exc}"))
    try:
        yield page
    finally:
        context.close()


@contextlib.contextmanager
def diagnostics(page, lab, out_dir: Path):
    """On failure, save a screenshot, the server log and the browser console to ``out_dir``."""
    try:
        yield
    except BaseException as exc:
        saved = []
        with contextlib.suppress(PlaywrightError):
            page.screenshot(path=out_dir / "failure.png", full_page=True, timeout=30_000)
            saved.append("failure.png")
        with contextlib.suppress(OSError):
            shutil.copy2(lab.log_path, out_dir / "jupyter-server.log")
            saved.append("jupyter-server.log")
        (out_dir / "browser-console.log").write_text("\n".join(page.console_lines) + "\n")
        saved.append("browser-console.log")
        exc.add_note(f"browser test diagnostics in {out_dir}: {', '.join(saved)}")
        raise


# -- waiting --------------------------------------------------------------------------------------
def wait_for(
    condition: Callable[[], object],
    *,
    timeout_s: float,
    what: str | Callable[[], str],
    poll_s: float = 0.5,
):
    """Poll ``condition`` until it returns neither None nor False; return that value.

    Fails the test after ``timeout_s`` seconds, naming ``what`` (a callable is called then, so
    the message can describe what the page shows at that moment).
    """
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            value = condition()
        except (PlaywrightError, OSError, ValueError) as exc:  # transient: the page is changing
            value, last_error = None, exc
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            if callable(what):
                with contextlib.suppress(PlaywrightError, OSError, ValueError):
                    what = what()
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        time.sleep(poll_s)


def kernel_state(lab, notebook: str) -> str | None:
    """Execution state of the kernel of ``notebook``'s session, from the server's REST API."""
    for session in lab.api("/api/sessions"):
        if session["path"] == notebook and session.get("kernel"):
            return session["kernel"]["execution_state"]
    return None


# -- JupyterLab, as a user does it ---------------------------------------------------------------
def run_menu_command(page, menu: str, command: str) -> None:
    """Click ``menu`` in the menu bar, then its item bound to the JupyterLab ``command``."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def open_notebook(page, lab, notebook: str, *, url: str | None = None) -> None:
    """Open ``notebook`` (in JupyterLab, or at ``url``: Notebook 7) once its kernel is idle."""
    page.goto(url or lab.lab_url(notebook), wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Notebook").wait_for(state="visible")
    wait_for(
        lambda: kernel_state(lab, notebook) == "idle",
        timeout_s=WAIT_S,
        what=f"the kernel of {notebook} to start (REST /api/sessions)",
    )
    # The file browser takes room the explorer needs: collapse it (click its active tab).
    open_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if open_tab.count():
        open_tab.click()


def run_all_cells(page, lab, notebook: str, *, clear: bool = True) -> None:
    """Edit > Clear All Outputs, then Run > Run All Cells; wait until the run has ended.

    Clearing first means every output checked afterwards comes from this kernel (not from the
    outputs and widget state stored in the file) and lets the end of the run be seen: the
    first code cell has a number, none is queued or running (``[*]``), the kernel is idle.
    A cell that raises ends the run early; :func:`saved_cell_errors` reports it.
    """
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
    assert prompts.count() > 0, f"{notebook} shows no code cells"
    if clear:
        run_menu_command(page, "Edit", "editmenu:clear-all")
        wait_for(
            lambda: not page.locator(".jp-Notebook .jp-OutputArea-output").count(),
            timeout_s=WAIT_S,
            what=f"Clear All Outputs in {notebook}",
        )
    run_menu_command(page, "Run", "runmenu:run-all")

    def ended():
        texts = [t.strip() for t in prompts.all_inner_texts()]
        return (
            re.fullmatch(r"\[\d+\]:", texts[0]) is not None
            and "[*]:" not in texts
            and kernel_state(lab, notebook) == "idle"
        )

    wait_for(
        ended,
        timeout_s=RUN_ALL_S,
        what=lambda: (
            f"Run All Cells to end in {notebook}; prompts: "
            + " ".join(t.strip() for t in prompts.all_inner_texts())
        ),
    )


def saved_cell_errors(page, lab, notebook: str) -> list[str]:
    """File > Save, then read the saved copy: the errors its code cells raised."""
    path = lab.root_dir / notebook
    before = path.stat().st_mtime_ns
    run_menu_command(page, "File", "docmanager:save")
    wait_for(
        lambda: path.stat().st_mtime_ns != before,
        timeout_s=WAIT_S,
        what=f"JupyterLab to save {notebook}",
    )
    nb = wait_for(lambda: json.loads(path.read_text()), timeout_s=30, what=f"{notebook} as JSON")
    errors = []
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output['ename']}: {output['evalue']}")
        if cell["cell_type"] == "code" and cell.get("execution_count") is None:
            errors.append(f"cell {index} did not run")
    return errors


def widget_problems(page) -> list[str]:
    """Text that JupyterLab shows in place of a widget that failed or never loaded."""
    problems = []
    for text in ("Error displaying widget", "Loading widget..."):
        count = page.get_by_text(text).count()
        if count:
            problems.append(f"{count} x {text!r}")
    return problems


def image_state(img) -> dict:
    """What the browser shows in ``img``: its src, its bytes (and their SHA-256) decoded."""
    info = img.evaluate(
        """async (img) => {
            const response = await fetch(img.src);
            const bytes = new Uint8Array(await response.arrayBuffer());
            let binary = "";
            for (let i = 0; i < bytes.length; i += 8192) {
                binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
            }
            return {src: img.src, base64: btoa(binary),
                    loaded: img.complete && img.naturalWidth > 0};
        }"""
    )
    data = base64.b64decode(info.pop("base64"))
    info["sha256"] = hashlib.sha256(data).hexdigest()
    info["pixels"] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return info


def shown_on_screen(img) -> np.ndarray:
    """The pixels of ``img`` as painted on the page (an element screenshot), BGR."""
    png = img.screenshot(timeout=WAIT_S * 1000)
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def readout_value(slider) -> float:
    return float(slider.locator(".widget-readout").inner_text().strip())


def drag_handle(page, slider, *, fraction: float) -> None:
    """Drag the slider's handle by ``fraction`` of the track width, with the mouse."""
    handle = slider.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    hb = handle.bounding_box()
    track = slider.locator(".noUi-target").bounding_box()
    assert hb and track, "the slider's handle or track has no box on the page"
    x, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + fraction * track["width"], y, steps=12)
    page.mouse.up()


def find_slider(page, label: re.Pattern):
    """The one visible ipywidgets slider whose description matches ``label``."""
    sliders = page.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=label)
    )

    def what():
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        return (
            f"one visible slider labelled {label.pattern!r} (found {sliders.count()}); "
            "the outputs show: " + " | ".join(t[:200] for t in outputs)
        )

    wait_for(lambda: sliders.count() == 1 and sliders.is_visible(), timeout_s=WAIT_S, what=what)
    return sliders.first


def find_picture(cell):
    """The largest visible <img> in ``cell``'s output: the explorer's picture."""
    images = cell.locator(".jp-OutputArea-output img")
    wait_for(
        lambda: images.count() >= 1 and images.first.is_visible(),
        timeout_s=WAIT_S,
        what="an <img> in the output of the slider's cell",
    )
    boxes = [image.bounding_box() for image in images.all()]
    areas = [box["width"] * box["height"] if box else 0.0 for box in boxes]
    return images.nth(int(np.argmax(areas)))


# -- the test -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_dragging_high_changes_the_picture(case, lab, page, tmp_path):
    notebook, is_explorer = CASES[case]
    with diagnostics(page, lab, tmp_path):
        open_notebook(page, lab, notebook)
        run_all_cells(page, lab, notebook)
        errors = saved_cell_errors(page, lab, notebook)
        assert not errors, f"{notebook} raised in the browser: " + "; ".join(errors)

        # The widgets render: no error text, no "Loading widget..." that lasts, the controls
        # and the picture are on screen.
        wait_for(
            lambda: not widget_problems(page),
            timeout_s=WAIT_S,
            what=lambda: f"the widgets to render ({', '.join(widget_problems(page))})",
        )
        slider = find_slider(page, HIGH_LABEL)
        cell = page.locator(".jp-Notebook .jp-Cell").filter(has=slider)
        img = find_picture(cell)
        before = wait_for(
            lambda: (state := image_state(img))["loaded"] and state,
            timeout_s=WAIT_S,
            what="the picture to load",
        )
        assert before["pixels"] is not None, "the picture's bytes are not an image"
        value_before = readout_value(slider)

        # A user's gesture: drag the handle a third of the track, towards the far end.
        track = slider.locator(".noUi-target").bounding_box()
        handle = slider.locator(".noUi-handle").bounding_box()
        at = (handle["x"] + handle["width"] / 2 - track["x"]) / track["width"]
        fraction = 1 / 3 if at < 0.5 else -1 / 3
        drag_handle(page, slider, fraction=fraction)

        value_after = wait_for(
            lambda: (value := readout_value(slider)) != value_before and value,
            timeout_s=WAIT_S,
            what=f"the readout of 'high' to leave {value_before:g} after the drag",
        )
        assert (value_after > value_before) == (fraction > 0), (
            f"dragging 'high' {'right' if fraction > 0 else 'left'} moved its readout from "
            f"{value_before:g} to {value_after:g}"
        )
        wait_for(
            lambda: image_state(img)["sha256"] != before["sha256"],
            timeout_s=WAIT_S,
            what=f"the picture to change after 'high' went {value_before:g} -> {value_after:g}",
        )
        wait_for(
            lambda: kernel_state(lab, notebook) == "idle",
            timeout_s=WAIT_S,
            what="the kernel to finish the updates the drag asked for",
        )
        after = image_state(img)  # the last picture, for the value the drag ended on
        assert after["loaded"], "the new picture does not load in the browser"
        assert after["pixels"] is not None, "the new picture's bytes are not an image"
        assert not np.array_equal(after["pixels"], before["pixels"]), (
            f"the picture's bytes changed but not its pixels ('high' {value_after:g})"
        )
        assert shown_on_screen(img).std() > 0, "the picture is painted as a blank rectangle"
        assert not widget_problems(page), f"after the drag: {widget_problems(page)}"

        save_screenshot(page, cell, tmp_path, update=is_explorer)


def save_screenshot(page, cell, tmp_path: Path, *, update: bool = False) -> None:
    """The explorer in view, saved to tmp_path and (M1VISION_UPDATE_SCREENSHOT=1) to docs/."""
    # Scroll the explorer's cell, with the markdown cell introducing it, to the top.
    cell.evaluate(
        """(el) => {
            const intro = el.previousElementSibling;
            const top = intro && intro.classList.contains("jp-MarkdownCell") ? intro : el;
            top.scrollIntoView({block: "start"});
        }"""
    )
    page.mouse.move(0, 0)  # no hover effects in the picture
    with contextlib.suppress(PlaywrightError):  # cosmetic: let "Saving completed" fade
        page.get_by_text("Saving completed").wait_for(state="hidden", timeout=10_000)
    page.wait_for_timeout(500)  # let the scroll settle
    png = page.screenshot(path=tmp_path / "explorer.png")
    if update and UPDATE_SCREENSHOT:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(SCREENSHOT, png, overwrite=True)


# -- the tri-planar explorer in JupyterLab 4 and Jupyter Notebook 7 ------------------------------
TRIPLANAR_COPIES = {
    "jupyterlab4": "fixture/triplanar_lab.ipynb",
    "notebook7": "fixture/triplanar_nb7.ipynb",
    "no_widgets": "fixture/triplanar_static.ipynb",
}
LATENCY_MOVES = 20
LATENCY_RESULTS = REPO / "benchmarks" / "results" / "browser_latency.json"
FRONT_ENDS = {
    # id: (URL of a notebook on the server, writes the README screenshot)
    "jupyterlab4": (lambda lab, notebook: lab.lab_url(notebook), True),
    "notebook7": (lambda lab, notebook: lab.notebook7_url(notebook), False),
}
_LATENCY: dict[str, dict] = {}


def plane_picture(page, plane: str):
    """The <img> under the bold plane title ("axial"...) of the tri-planar explorer."""
    box = page.locator(".widget-vbox").filter(
        has=page.locator(".widget-html", has_text=re.compile(rf"^\s*{plane}\s*$"))
    )
    images = box.last.locator("img")  # the innermost box: the whole explorer is a box too
    wait_for(lambda: images.count() >= 1 and images.first.is_visible(), timeout_s=WAIT_S,
             what=f"the {plane} picture")  # fmt: skip
    return images.first


def key_press_latencies(page, slider, img, n: int) -> list[float]:
    """Milliseconds from the Enter key in ``slider``'s readout to ``img`` showing a new picture.

    Each move types the next lower slice number into the slider's readout and presses Enter
    (Notebook 7 takes the arrow keys of a focused slider handle for the notebook; the readout
    is a text field both front ends leave alone). A MutationObserver stamps each change of the
    picture's ``src`` once the new image is decoded; the time starts just before Enter is sent,
    so the figure includes browser -> kernel -> browser, the kernel's work and the decode.
    """
    img.evaluate(
        """(img) => {
            window.__m1vision_shown = [];
            new MutationObserver(async () => {
                try { await img.decode(); } catch (e) {}
                window.__m1vision_shown.push(performance.now());
            }).observe(img, {attributes: true, attributeFilter: ["src"]});
        }"""
    )
    readout = slider.locator(".widget-readout")
    readout.scroll_into_view_if_needed()
    first = int(readout_value(slider))
    times = []
    for move in range(n):
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(first - move - 1))
        count = page.evaluate("window.__m1vision_shown.length")
        start = page.evaluate("performance.now()")
        page.keyboard.press("Enter")
        wait_for(
            lambda count=count: page.evaluate("window.__m1vision_shown.length") > count,
            timeout_s=60,
            what=f"a new picture after key press {move + 1}",
            poll_s=0.005,
        )
        times.append(page.evaluate("window.__m1vision_shown.at(-1)") - start)
        page.wait_for_timeout(50)  # a user's pace, and no second picture in flight
    return times


def write_latency_results() -> None:
    import platform

    from m1vision._atomic import atomic_write_json

    results = {
        "schema": "m1vision.browser_latency",
        "version": 1,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "what": (
            "Enter in the axial slice slider's readout (the next slice typed) of "
            "TriPlanarExplorer -> the new "
            f"512x512 axial picture decoded in the page, {LATENCY_MOVES} moves, headless "
            "Chromium, kernel on the same machine"
        ),
        "front_ends": _LATENCY,
    }
    atomic_write_json(LATENCY_RESULTS, results, overwrite=True)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS), ids=list(FRONT_ENDS))
def test_triplanar_keys_and_clicks_in_the_browser(front_end, lab, page, tmp_path):
    url_of, readme_screenshot = FRONT_ENDS[front_end]
    notebook = TRIPLANAR_COPIES[front_end]
    with diagnostics(page, lab, tmp_path):
        open_notebook(page, lab, notebook, url=url_of(lab, notebook))
        run_all_cells(page, lab, notebook, clear=False)
        errors = saved_cell_errors(page, lab, notebook)
        assert not errors, f"{notebook} raised in {front_end}: " + "; ".join(errors)
        wait_for(
            lambda: not widget_problems(page),
            timeout_s=WAIT_S,
            what=lambda: f"the widgets to render ({', '.join(widget_problems(page))})",
        )
        axial = plane_picture(page, "axial")
        coronal = plane_picture(page, "coronal")
        state = wait_for(
            lambda: (st := image_state(axial))["loaded"] and st, timeout_s=WAIT_S,
            what="the axial picture to load",
        )  # fmt: skip
        assert state["pixels"].shape[:2] == (512, 512)
        slider = find_slider(page, re.compile(r"^\s*axial\s*$"))

        times = key_press_latencies(page, slider, axial, LATENCY_MOVES)
        assert readout_value(slider) == 20 - LATENCY_MOVES  # every key press moved one slice
        p50, p95 = (float(np.percentile(times, q)) for q in (50, 95))
        _LATENCY[front_end] = {"p50_ms": p50, "p95_ms": p95, "n": len(times), "ms": times}
        print(f"{front_end}: key press -> picture p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        if RECORD_LATENCY:
            write_latency_results()

        # a click in the coronal picture moves the crosshair: the axial slider follows
        wait_for(lambda: kernel_state(lab, notebook) == "idle", timeout_s=WAIT_S,
                 what="the kernel to go idle")  # fmt: skip
        coronal.scroll_into_view_if_needed()
        box = coronal.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 0.25 * box["height"])
        # z upwards: a quarter from the top is three quarters of the way up the 40 slices
        wait_for(
            lambda: readout_value(slider) in (29, 30, 31) and readout_value(slider),
            timeout_s=WAIT_S,
            what=lambda: f"the axial slider to follow the click (at {readout_value(slider)})",
        )
        cursor = page.get_by_text(re.compile(r"HU at voxel \(z \d+, row \d+, col \d+\)"))
        wait_for(lambda: cursor.count() >= 1, timeout_s=WAIT_S,
                 what="the value under the cursor")  # fmt: skip
        assert shown_on_screen(axial).std() > 0

        arrow_keys_step_the_slice(page, lab, notebook, slider, axial)
        cell = page.locator(".jp-Notebook .jp-Cell").filter(has=slider)
        page.set_viewport_size({"width": 1760, "height": 1180})  # the three planes in view
        save_screenshot(page, cell, tmp_path, update=readme_screenshot)


def active_cell(page) -> int:
    """Index of the notebook's active cell (what the front end's arrow keys would move)."""
    return page.evaluate(
        """() => [...document.querySelectorAll(".jp-Notebook .jp-Cell")]
                 .findIndex((cell) => cell.classList.contains("jp-mod-active"))"""
    )


def arrow_keys_step_the_slice(page, lab, notebook: str, slider, img) -> None:
    """The arrow keys, with the mouse over the axial picture, step the axial slice.

    In Notebook 7 the arrow keys of a focused slider belong to the notebook (they move the
    active cell); over the picture the explorer takes them (ipyevents, default action and
    propagation stopped), so the slice moves and the notebook keeps its active cell.
    """
    wait_for(lambda: kernel_state(lab, notebook) == "idle", timeout_s=WAIT_S,
             what="the kernel to go idle before the arrow keys")  # fmt: skip
    img.scroll_into_view_if_needed()
    cell_before, start = active_cell(page), int(readout_value(slider))
    picture_before = image_state(img)["sha256"]
    box = img.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)
    for key, expected in (("ArrowUp", start + 1), ("ArrowUp", start + 2),
                          ("ArrowDown", start + 1)):  # fmt: skip
        page.keyboard.press(key)
        wait_for(
            lambda expected=expected: readout_value(slider) == expected,
            timeout_s=WAIT_S,
            what=lambda key=key, expected=expected: (
                f"{key} over the axial picture to move the axial slider to {expected} (it "
                f"shows {readout_value(slider):g}; active cell {active_cell(page)})"
            ),
        )
    wait_for(lambda: image_state(img)["sha256"] != picture_before, timeout_s=WAIT_S,
             what="the axial picture to show the slice the keys moved to")  # fmt: skip
    assert active_cell(page) == cell_before, "the notebook took the arrow keys too"


def _expected_static_picture() -> np.ndarray:
    """What the fixture's explorer puts in its mime bundle, computed here."""
    namespace: dict = {}
    nb = json.loads((FIXTURE_NOTEBOOK.parent / "triplanar.ipynb").read_text())
    code = "".join(nb["cells"][1]["source"])
    exec(compile(code.rsplit("\n", 1)[0], "triplanar.ipynb", "exec"), namespace)
    png = base64.b64decode(namespace["explorer"]._repr_mimebundle_()["image/png"])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_without_the_widget_front_end_the_static_picture_shows(lab, browser, tmp_path):
    """The widget manager's lab extension cannot load: the output shows the PNG instead."""
    notebook = TRIPLANAR_COPIES["no_widgets"]
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    blocked = []

    def block(route):
        blocked.append(route.request.url)
        route.abort()

    context.route("**/lab/extensions/@jupyter-widgets/**", block)
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    page.console_lines = []
    page.on("console", lambda msg: page.console_lines.append(f"[{msg.type}] {msg.text}"))
    try:
        with diagnostics(page, lab, tmp_path):
            open_notebook(page, lab, notebook)
            run_all_cells(page, lab, notebook, clear=False)
            assert blocked, "the widget manager was not requested: the test blocks nothing"
            img = page.locator(".jp-OutputArea-output img")
            wait_for(lambda: img.count() == 1 and img.is_visible(), timeout_s=WAIT_S,
                     what="the static picture in the output")  # fmt: skip
            shown = image_state(img)
            assert shown["src"].startswith("data:image/png")
            assert np.array_equal(cv2.cvtColor(shown["pixels"], cv2.COLOR_BGRA2BGR)
                                  if shown["pixels"].shape[2] == 4 else shown["pixels"],
                                  _expected_static_picture())  # fmt: skip
            assert shown_on_screen(img).std() > 0
            assert not page.get_by_text("Error displaying widget").count()
            page.screenshot(path=tmp_path / "static.png")
    finally:
        context.close()
