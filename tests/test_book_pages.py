"""The built book as a reader sees it, checked in headless Chromium.

For every page in _toc.yml this opens the built HTML, served from
127.0.0.1 as a web host would serve it, lets the widgets and MathJax
render, and checks what a reader would notice:

- every image on the page loaded, and each chapter shows a figure;
- every widget rendered into a visible, non-empty area;
- every piece of maths was typeset, without a TeX error;
- the page asked for nothing from outside the book (no CDN), and the
  browser console logged no error.

It saves a full-page screenshot of each page to _build/screenshots/, to
look at. Run after `make book`, with `make browser`.
"""
import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
RENDER_TIMEOUT_MS = 20_000

# Console errors that do not change what a reader sees: a substring of the
# message, and why it is harmless.
ALLOWED_CONSOLE_ERRORS = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "Jupyter Book 1 writes sphinx-thebe's settings into every page twice; "
        "the second copy fails. Thebe (running cells through Binder) is not "
        "used by this book, and the first copy is intact.",
}


def toc_pages(entries):
    """The page names (no suffix) of a list of _toc.yml entries, in order."""
    pages = []
    for entry in entries:
        if "file" in entry:
            pages.append(str(Path(entry["file"]).with_suffix("")))
        pages += toc_pages(entry.get("chapters", []) + entry.get("sections", []))
    return pages


def book_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    root = str(Path(toc["root"]).with_suffix(""))
    return [root] + toc_pages(toc.get("parts", []) + toc.get("chapters", []))


PAGES = book_pages()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """The URL of _build/html, served on a free port of 127.0.0.1."""
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    handler = functools.partial(QuietHandler, directory=HTML)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def context(site):
    """A headless Chromium context for all pages (they share its cache)."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium not found: install it (Debian: apt-get install "
                    "chromium) or set CHROMIUM to a Chrome/Chromium binary")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=CHROMIUM_ARGS)
        yield browser.new_context(viewport={"width": 1280, "height": 900})
        browser.close()


def open_page(context, url, site):
    """Open url; return the page and a list that collects its problems:
    console errors, missing files, requests to outside the book."""
    page = context.new_page()
    problems = []

    def outside_the_book(route):
        problems.append(f"asked for a file outside the book: "
                        f"{route.request.url}")
        route.abort()

    def console_error(text):
        if not any(allowed in text for allowed in ALLOWED_CONSOLE_ERRORS):
            problems.append(f"console error: {text}")

    def missing_file(response):
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    # Only requests that do not start with the site's URL are intercepted.
    page.route(re.compile(f"^(?!{re.escape(site)}/)"), outside_the_book)
    page.on("console",
            lambda msg: console_error(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: console_error(f"uncaught: {err}"))
    page.on("response", missing_file)
    page.goto(url, wait_until="load")
    return page, problems


# Scripts run in the page; each CHECK_ returns a list of problems (strings).
WAIT_FOR_MATHJAX = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise)
        await MathJax.startup.promise;
}"""

WIDGETS_RENDERED = """() => {
    const views = document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]');
    return [...views].every(v => {
        const area = v.previousElementSibling;
        return area && area.classList.contains('widget-subarea')
            && area.childElementCount > 0;
    });
}"""

CHECK_WIDGETS = """() => {
    const MIN_BAR_WIDTH = 40;  // px: narrower, a reader cannot read it
    const problems = [];
    const views = document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]');
    views.forEach((v, i) => {
        const area = v.previousElementSibling;
        const rendered = area && area.classList.contains('widget-subarea');
        const box = rendered ? area.getBoundingClientRect() : null;
        if (!rendered || area.childElementCount === 0)
            problems.push(`widget ${i + 1} was not rendered`);
        else if (box.width === 0 || box.height === 0)
            problems.push(`widget ${i + 1} has an empty area`);
    });
    // An Output widget that rendered but shows nothing.
    document.querySelectorAll('.widget-output').forEach((out, i) => {
        if (out.getBoundingClientRect().height === 0)
            problems.push(`output widget ${i + 1} is empty`);
    });
    // A slider or progress bar squeezed too narrow to read, as when a row
    // of widgets is wider than the page.
    document.querySelectorAll('.slider-container, .widget-progress .progress')
        .forEach(bar => {
            const width = bar.getBoundingClientRect().width;
            if (width < MIN_BAR_WIDTH)
                problems.push(`a slider or progress bar is squeezed to `
                    + `${Math.round(width)} px: too many widgets in one row?`);
        });
    return problems;
}"""

CHECK_IMAGES = """() => {
    const main = document.querySelector('main') || document.body;
    const problems = [];
    main.querySelectorAll('img').forEach(img => {
        if (!img.complete || img.naturalWidth === 0)
            problems.push(`image did not load: ${img.src.slice(0, 80)}`);
    });
    return problems;
}"""

COUNT_FIGURES = """() => [...document.querySelectorAll(
    'main .cell_output img, main .widget-subarea img')]
    .filter(img => img.naturalWidth > 0).length"""

# Raw TeX: $$, \( or \[, or $...$ around something TeX-like (\ ^ _ { }).
CHECK_MATHS = r"""() => {
    const main = document.querySelector('main') || document.body;
    const problems = [];
    const short = text => text.trim().replace(/\s+/g, ' ').slice(0, 60);
    main.querySelectorAll('.math').forEach(el => {
        if (!el.querySelector('mjx-container'))
            problems.push(`maths not typeset: ${short(el.textContent)}`);
    });
    main.querySelectorAll('mjx-merror').forEach(el => problems.push(
        `TeX error: ${el.getAttribute('data-mjx-error') || el.textContent}`));
    // Raw TeX left in the prose (code may show dollars legitimately).
    const rawTex = /\$\$|\\\(|\\\[|\$[^$\s][^$\n]*[\\^_{}][^$\n]*\$/;
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
        if (node.parentElement.closest('pre, code, script, style, mjx-container'))
            continue;
        if (rawTex.test(node.textContent))
            problems.push(`raw TeX in the text: ${short(node.textContent)}`);
    }
    return problems;
}"""


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(name, site, context):
    page, problems = open_page(context, f"{site}/{name}.html", site)
    try:
        page.evaluate(WAIT_FOR_MATHJAX)
        try:
            page.wait_for_function(WIDGETS_RENDERED, timeout=RENDER_TIMEOUT_MS)
        except PlaywrightTimeoutError:
            problems.append("widgets were still not rendered after "
                            f"{RENDER_TIMEOUT_MS / 1000:.0f} s")
        page.wait_for_load_state("networkidle")   # fonts, images in widgets
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{Path(name).name}.png",
                        full_page=True)
        problems += page.evaluate(CHECK_IMAGES)
        problems += page.evaluate(CHECK_WIDGETS)
        problems += page.evaluate(CHECK_MATHS)
        if name.startswith("notebooks/") and page.evaluate(COUNT_FIGURES) == 0:
            problems.append("a chapter without a single figure")
    finally:
        page.close()
    assert not problems, f"{name}.html:\n  " + "\n  ".join(problems)


# What an explorer (nnlib.explore.Precomputed) shows now: the sources of
# its visible pictures and its visible text.
SHOWN = """el => {
    const visible = [...el.querySelectorAll('img, .widget-html-content')]
        .filter(e => e.offsetParent !== null);
    return visible.map(e => e.tagName === 'IMG' ? e.src.slice(-80)
                                                : e.textContent).join('|');
}"""


def explorer_pages():
    """The chapters whose stored outputs hold a precomputed explorer."""
    pages = []
    for name in PAGES:
        path = ROOT / f"{name}.ipynb"
        if path.is_file() and "nnlib-explorer" in path.read_text():
            pages.append(name)
    return pages


@pytest.mark.parametrize("name", explorer_pages())
def test_explorer_controls_switch_the_picture(name, site, context):
    """Move each control of each precomputed explorer, as a reader would,
    and check that what the explorer shows changed: the links between the
    controls and the precomputed pictures work with no kernel."""
    page, problems = open_page(context, f"{site}/{name}.html", site)
    try:
        page.wait_for_function(WIDGETS_RENDERED, timeout=RENDER_TIMEOUT_MS)
        explorers = page.locator(".nnlib-explorer")
        assert explorers.count() > 0, f"{name}: no explorer rendered"
        for k in range(explorers.count()):
            explorer = explorers.nth(k)
            explorer.scroll_into_view_if_needed()
            before = explorer.evaluate(SHOWN)
            assert before, f"{name}: explorer {k + 1} shows nothing"
            buttons = explorer.locator(".widget-toggle-buttons button")
            sliders = explorer.locator(".widget-slider .noUi-handle")
            moved = 0
            if buttons.count() > 1:
                buttons.nth(1).click()
                moved += 1
                page.wait_for_timeout(300)
                after = explorer.evaluate(SHOWN)
                assert after != before, (
                    f"{name}: explorer {k + 1} did not change when its "
                    "buttons were clicked")
                before = after
            for s in range(sliders.count()):
                sliders.nth(s).focus()
                page.keyboard.press("ArrowRight")
                moved += 1
                page.wait_for_timeout(300)
                after = explorer.evaluate(SHOWN)
                assert after != before, (
                    f"{name}: explorer {k + 1} did not change when slider "
                    f"{s + 1} moved")
                before = after
            assert moved, f"{name}: explorer {k + 1} has no control to move"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        explorers.first.screenshot(
            path=SCREENSHOTS / f"{Path(name).name}-explorer-moved.png")
    finally:
        page.close()
    assert not problems, f"{name}.html:\n  " + "\n  ".join(problems)
