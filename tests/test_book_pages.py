"""The built book as a reader sees it, checked in headless Chromium.

For every page in _toc.yml this opens the built HTML, served from
127.0.0.1 as a web host would serve it, lets the widgets and MathJax
render, and checks what a reader would notice:

- every image on the page loaded, and each chapter shows a figure;
- every widget rendered into a visible, non-empty area;
- every piece of maths was typeset, without a TeX error;
- the page asked for nothing from outside the book (no CDN), and the
  browser console logged no error at all;
- each page's total download stays under its target, and the widget
  renderer and MathJax load only on pages that use them (test_page_weight,
  which prints a page-weight table);
- no results table printed as raw `| ... |` text;
- every static figure has alt text that says what it shows (not its hashed
  file name) and a numbered caption;
- at a desktop and at a phone's width, the page does not scroll sideways,
  printed output wraps inside its box, and tables and display maths wider
  than the column sit in a box that scrolls (test_page_fits);
- the project archive the pages link to is in the build and holds what
  `make lab`, `make book` and `make test` need.

It saves a full-page screenshot of each page to _build/screenshots/, to
look at (phone-width ones in _build/screenshots/phone/). Run after
`make book`, with `make browser`.
"""
import functools
import http.server
import os
import re
import shutil
import tarfile
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
BOOK_TITLE = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]


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
def browser(site):
    """Headless Chromium, shared by the tests of this module."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium not found: install it (Debian: apt-get install "
                    "chromium) or set CHROMIUM to a Chrome/Chromium binary")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def context(browser):
    """A desktop context for all pages (they share its cache)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


# The widths a reader reads at: a laptop, and a phone (390 x 844 CSS px,
# as an iPhone 12 to 15 reports), emulated as a phone: the page's viewport
# meta tag applies and the screen is touch.
VIEWPORTS = {
    "desktop": dict(viewport={"width": 1366, "height": 900}),
    "phone": dict(viewport={"width": 390, "height": 844},
                  device_scale_factor=2, is_mobile=True, has_touch=True),
}


@pytest.fixture(scope="module", params=list(VIEWPORTS))
def sized_context(request, browser):
    """(name, context) for each width of VIEWPORTS."""
    context = browser.new_context(**VIEWPORTS[request.param])
    yield request.param, context
    context.close()


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


# A results table displayed as Markdown that was not parsed as a table
# shows as a paragraph of `| a | b |` text (MyST-NB renders text/markdown
# outputs as CommonMark unless nb_render_markdown_format says otherwise).
CHECK_RAW_TABLES = r"""() => {
    const problems = [];
    document.querySelectorAll('main .cell_output p, main .output p')
        .forEach(p => {
            const text = p.textContent.trim();
            if (text.startsWith('|'))
                problems.push('a table printed as raw text: '
                    + text.replace(/\s+/g, ' ').slice(0, 70));
        });
    return problems;
}"""


# Every static figure: alt text that says what it shows (MyST-NB gives an
# image its hashed file name unless the cell's mystnb.image.alt says
# otherwise, and that is all a screen reader would read), and a numbered
# caption (mystnb.figure). The pictures inside a widget (the explorers of
# chapters 1 and 3) are left out: ipywidgets' Image has no alt text.
CHECK_FIGURE_TEXT = r"""() => {
    const problems = [];
    document.querySelectorAll('main img').forEach(img => {
        if (img.closest('.jupyter-widgets, .widget-subarea')) return;
        const alt = (img.getAttribute('alt') || '').trim();
        const file = (img.getAttribute('src') || '').split('/').pop();
        if (alt.split(/\s+/).length < 4
                || /[0-9a-f]{16,}|\.(png|jpe?g|svg|gif)$/i.test(alt))
            problems.push('an image without alt text that says what it '
                + `shows: ${file.slice(0, 16)}... alt="${alt.slice(0, 40)}"`);
        const figure = img.closest('figure');
        if (img.closest('.cell_output')
                && !(figure && figure.querySelector('figcaption .caption-number')))
            problems.push('a figure without a numbered caption: '
                + (alt.slice(0, 50) || file.slice(0, 16)));
    });
    return problems;
}"""


def settle(page):
    """Wait until the page's maths is typeset, its widgets drawn and its
    network quiet (fonts, images in widgets); False if the widgets were
    still not rendered in time."""
    page.evaluate(WAIT_FOR_MATHJAX)
    try:
        page.wait_for_function(WIDGETS_RENDERED, timeout=RENDER_TIMEOUT_MS)
        rendered = True
    except PlaywrightTimeoutError:
        rendered = False
    page.wait_for_load_state("networkidle")
    return rendered


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(name, site, context):
    page, problems = open_page(context, f"{site}/{name}.html", site)
    try:
        if not settle(page):
            problems.append("widgets were still not rendered after "
                            f"{RENDER_TIMEOUT_MS / 1000:.0f} s")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{Path(name).name}.png",
                        full_page=True)
        problems += page.evaluate(CHECK_IMAGES)
        problems += page.evaluate(CHECK_WIDGETS)
        problems += page.evaluate(CHECK_MATHS)
        problems += page.evaluate(CHECK_RAW_TABLES)
        problems += page.evaluate(CHECK_FIGURE_TEXT)
        if page.title().count(BOOK_TITLE) > 1:
            problems.append(f"the tab's title names the book twice: "
                            f"{page.title()!r}")
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


# What is wider than it may be, at the current width. Text may not run
# off: the page must not scroll sideways and printed output wraps in its
# box. Tables and display maths may be wider than the column, but then
# they sit in a box that scrolls (overflow-x auto or scroll) and that box
# itself fits in the column, and shows that it scrolls.
CHECK_FITS = r"""() => {
    const SLACK = 1;   // px of rounding
    const problems = [];
    const short = el => el.textContent.trim().replace(/\s+/g, ' ')
        .slice(0, 50);
    const root = document.documentElement;
    const width = root.clientWidth;
    if (root.scrollWidth > width + SLACK) {
        // Name the widest culprits: elements whose right edge is beyond
        // the page and that are not inside a box that scrolls.
        const culprits = [...document.querySelectorAll('main *')]
            .filter(el => el.getBoundingClientRect().right > width + SLACK
                && !scrollsSideways(el.parentElement)
                && !el.closest('.bd-sidebar-secondary, .bd-sidebar-primary'))
            .filter((el, i, all) => !all.includes(el.parentElement))
            .slice(0, 3)
            .map(el => `<${el.tagName.toLowerCase()} class="${el.className}"`
                 + `> "${short(el)}"`);
        problems.push(`the page scrolls sideways by `
            + `${root.scrollWidth - width} px: ${culprits.join('; ')}`);
    }
    function scrollsSideways(el) {
        for (; el && el !== document.body; el = el.parentElement) {
            const overflow = getComputedStyle(el).overflowX;
            if ((overflow === 'auto' || overflow === 'scroll')
                && el.clientWidth > 0)
                return el;
        }
        return null;
    }
    // Printed output: its lines must wrap, not run past the box.
    document.querySelectorAll('main .cell_output pre').forEach(pre => {
        if (pre.scrollWidth > pre.clientWidth + SLACK)
            problems.push(`printed output wider than its box by `
                + `${pre.scrollWidth - pre.clientWidth} px: "${short(pre)}"`);
    });
    // Tables and display maths: fit, or scroll inside a box that fits.
    const article = document.querySelector('main article')
        || document.querySelector('main');
    const column = article.getBoundingClientRect();
    const wide = [...article.querySelectorAll('table'),
                  ...article.querySelectorAll('mjx-container[display="true"]')];
    wide.forEach(el => {
        const box = el.getBoundingClientRect();
        if (box.width === 0) return;   // hidden (a closed toggle)
        const scroller = el.scrollWidth > el.clientWidth + SLACK
            && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
            ? el : scrollsSideways(el.parentElement);
        const kind = el.tagName === 'TABLE' ? 'table' : 'maths';
        if (scroller) {
            // book.js marks a box that hides content on its right; the
            // page fades that edge, so a reader sees there is more.
            if (scroller.scrollWidth > scroller.clientWidth + SLACK
                && scroller.scrollLeft < 1
                && !scroller.classList.contains('more-right'))
                problems.push(`${kind} scrolls with no cue at its right `
                    + `edge (no "more-right" mark): "${short(el)}"`);
            const s = scroller.getBoundingClientRect();
            if (s.right > column.right + SLACK || s.left < column.left - SLACK)
                problems.push(`${kind} scrolls in a box wider than the `
                    + `column: "${short(el)}"`);
        } else if (box.right > column.right + SLACK
                   || box.left < column.left - SLACK) {
            problems.push(`${kind} wider than the column and cut off `
                + `(${Math.round(box.width)} px in `
                + `${Math.round(column.width)} px): "${short(el)}"`);
        }
        // Clipped by an ancestor that hides overflow (as div.math does).
        for (let a = el.parentElement; a && a !== article;
             a = a.parentElement) {
            if (a === scroller) break;
            if (getComputedStyle(a).overflowX === 'hidden'
                && box.right > a.getBoundingClientRect().right + SLACK) {
                problems.push(`${kind} cut off by its container `
                    + `(${Math.round(box.width)} px in `
                    + `${Math.round(a.getBoundingClientRect().width)} px): `
                    + `"${short(el)}"`);
                break;
            }
        }
    });
    // An explorer (chapters 1 and 3) must fit whole: a reader compares
    // its picture with its controls, which a sideways scroll would part.
    article.querySelectorAll('.nnlib-explorer').forEach((el, i) => {
        const box = el.getBoundingClientRect();
        const hides = [el, ...el.querySelectorAll('*')].some(part =>
            getComputedStyle(part).overflowX !== 'visible'
            && part.scrollWidth > part.clientWidth + SLACK);
        if (box.right > column.right + SLACK || hides)
            problems.push(`explorer ${i + 1} does not fit in the column `
                + `(${Math.round(column.width)} px): part of it is cut off `
                + `or scrolls`);
    });
    return problems;
}"""


@pytest.mark.parametrize("name", PAGES)
def test_page_fits(name, site, sized_context):
    """At a desktop's and a phone's width, nothing is cut off or makes the
    page scroll sideways."""
    width, context = sized_context
    page, problems = open_page(context, f"{site}/{name}.html", site)
    try:
        settle(page)   # widgets not rendered: test_page_renders reports it
        page.wait_for_timeout(300)   # book.js marks the boxes that scroll
        fits = page.evaluate(CHECK_FITS)
        if width == "phone":
            folder = SCREENSHOTS / "phone"
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=folder / f"{Path(name).name}.png",
                            full_page=True)
    finally:
        page.close()
    assert not fits, f"{name}.html at {width} width:\n  " + "\n  ".join(fits)


# Page weight: what a reader downloads to read a page with an empty cache,
# counted as the bytes of every response (HTML, scripts, styles, fonts,
# images) from a server that does not compress, as the test's server (a
# host that compresses sends less). The widget renderer (require.js and
# embed-amd.js, 3.7 MB) may load only where a widget shows, MathJax only
# where there is maths (book/_ext/page_weight.py); a page with widgets
# also carries their state, pictures included, in its HTML.
MB = 1_000_000
WEIGHT_TARGET = 4 * MB            # a page that shows no widget
WEIGHT_TARGET_WIDGETS = 8 * MB    # a page with an explorer (chapters 1, 3)
WIDGET_RENDERER = "/embed-amd.js"
MATHJAX = "/tex-chtml.js"
WEIGHT_COLUMNS = {"document": "HTML", "script": "scripts",
                  "stylesheet": "styles", "font": "fonts", "image": "images"}

SHOWS = """() => ({
    widgets: document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]').length,
    maths: document.querySelectorAll('main .math').length,
})"""


def weigh_page(browser, site, name):
    """(bytes by column of WEIGHT_COLUMNS, the URLs loaded, what the page
    shows, problems) for one page opened in a fresh context."""
    context = browser.new_context(**VIEWPORTS["desktop"])
    finished = []
    context.on("requestfinished", lambda request: finished.append(request))
    page, problems = open_page(context, f"{site}/{name}.html", site)
    try:
        settle(page)   # widgets not rendered: test_page_renders reports it
        shows = page.evaluate(SHOWS)
        sizes = {column: 0 for column in [*WEIGHT_COLUMNS.values(), "other"]}
        for request in finished:
            column = WEIGHT_COLUMNS.get(request.resource_type, "other")
            sizes[column] += request.sizes()["responseBodySize"]
        urls = [request.url.split("?")[0] for request in finished]
    finally:
        context.close()
    return sizes, urls, shows, problems


def test_page_weight(site, browser, capsys):
    """Each page's total download, printed as a table (also saved to
    _build/page-weight.txt); a page over its target, or one that loads
    the widget renderer or MathJax without using it, fails."""
    header = (f"{'page':30}" + "".join(f"{c:>8}" for c in
              [*WEIGHT_COLUMNS.values(), "other", "total", "target"])
              + "  loads")
    lines, problems = [header], []
    for name in PAGES:
        sizes, urls, shows, errors = weigh_page(browser, site, name)
        problems += [f"{name}: {error}" for error in errors]
        total = sum(sizes.values())
        target = WEIGHT_TARGET_WIDGETS if shows["widgets"] else WEIGHT_TARGET
        renderer = any(url.endswith(WIDGET_RENDERER) for url in urls)
        mathjax = any(url.endswith(MATHJAX) for url in urls)
        loads = [what for what, loaded in [("widget renderer", renderer),
                                           ("MathJax", mathjax)] if loaded]
        lines.append(f"{name:30}" + "".join(
            f"{size / MB:8.2f}" for size in [*sizes.values(), total, target])
            + "  " + ", ".join(loads))
        if total > target:
            problems.append(f"{name}: {total / MB:.2f} MB, over its target "
                            f"of {target / MB:.0f} MB")
        if renderer and not shows["widgets"]:
            problems.append(f"{name}: loads the widget renderer but shows "
                            "no widget (leftover widget state?)")
        if mathjax and not shows["maths"]:
            problems.append(f"{name}: loads MathJax but has no maths")
    table = ("Page weight in MB (uncompressed, empty cache)\n"
             + "\n".join(lines))
    (ROOT / "_build" / "page-weight.txt").write_text(table + "\n")
    with capsys.disabled():
        print("\n" + table)
    assert not problems, "\n  ".join(["page weight:", *problems])


def makefile_paths():
    """Files the Makefile's recipes run or read (scripts/..., tests/...)."""
    text = (ROOT / "Makefile").read_text()
    return {path for path in re.findall(r"\b((?:scripts|tests)/[\w./-]+\.\w+)",
                                        text)
            if (ROOT / path).is_file()}


def config_paths():
    """Files _config.yml names: extensions, bibliography, favicon, CSS."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config.get("sphinx", {})
    paths = set(config.get("bibtex_bibfiles", []))
    paths.add(config.get("html", {}).get("favicon"))
    for module, folder in sphinx.get("local_extensions", {}).items():
        paths.add(f"{folder}/{module}.py")
    static = sphinx.get("config", {}).get("html_static_path", [])
    for name in sphinx.get("config", {}).get("html_css_files", []):
        paths.update(f"{folder}/{name}" for folder in static
                     if (ROOT / folder / name).is_file())
    return {path for path in paths if path}


def test_project_archive_is_in_the_build():
    """The download the pages link to: it is there, and it holds what the
    reader needs to run `make lab`, `make book` and `make test`."""
    archive = HTML / "nn-from-scratch.tar.gz"
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    assert archive.is_file(), f"{archive} is missing: `make book` builds it"
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames()
                 if "/" in name}
    needed = {"Makefile", "README.md", "LICENSE", "requirements.txt",
              "pyproject.toml", "_config.yml", "_toc.yml",
              "nnlib/__init__.py"}
    needed |= {str(p.relative_to(ROOT)) for p in ROOT.glob("nnlib/*.py")}
    needed |= {str(p.relative_to(ROOT))
               for p in ROOT.glob("notebooks/*.ipynb")}
    needed |= {f"{page}.md" for page in PAGES if page.startswith("book/")}
    needed |= makefile_paths() | config_paths()
    missing = sorted(needed - names)
    assert not missing, f"the archive lacks: {missing}"
    # The pages that offer it link to it.
    for page in ("book/intro", "book/running"):
        html = (HTML / f"{page}.html").read_text()
        links = re.findall(r'class="[^"]*project-archive[^"]*"[^>]*href="([^"]+)"'
                           r'|href="([^"]+)"[^>]*class="[^"]*project-archive',
                           html)
        hrefs = [a or b for a, b in links]
        assert hrefs, f"{page}.html has no link to the project archive"
        for href in hrefs:
            target = (HTML / page).parent / href
            assert target.resolve() == archive.resolve(), (page, href)
    leftovers = sorted(name for name in names if name.startswith(
        (".venv/", "_build/", "book/widgets/vendor/", ".git/"))
        or "__pycache__" in name)
    assert not leftovers, f"the archive holds build leftovers: {leftovers[:5]}"
