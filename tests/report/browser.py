"""Opens an HTML file in the system's Chromium and reports what a reader would see go wrong.

The report test needs a real browser: console errors, uncaught script errors, broken images, sections that
never show, any request off the machine (the report must be self-contained), and, when asked, chart labels
drawn over each other. Playwright drives
Debian's `chromium` package; it never downloads a browser. `ensure_chromium` installs the package where it
is missing (CI), and raises `ChromiumUnavailable`, with what it tried, where it cannot.

    with chromium_browser() as browser:
        check = open_page(run / "report.html", tmp_path / "report.png", browser=browser, expect=["#speed"])
    assert check.clean, check.summary()
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Request, sync_playwright

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags Chromium keeps trying to reach Google's services, and this
# network is closed: each attempt is noise at best and a slow timeout at worst.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root in CI, where Chromium refuses its sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Schemes a self-contained page may load from; anything else is a request off the machine.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

BROKEN_IMAGES_JS = """() => Array.from(document.images)
    .filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.getAttribute("src") || img.currentSrc || img.outerHTML.slice(0, 120))"""

# Every non-empty <text> of every inline SVG, as the four corners of its box on the page: the text's own
# box (getBBox) carried through its transform (getScreenCTM), so a rotated label is a rotated rectangle.
SVG_TEXT_BOXES_JS = """() => Array.from(document.querySelectorAll("svg")).map((svg, index) => {
    const where = (svg.closest("section") || {}).id || "page";
    const texts = Array.from(svg.querySelectorAll("text")).filter((t) => t.textContent.trim());
    return {chart: `${where} svg #${index}`, labels: texts.map((t) => {
        const b = t.getBBox(), m = t.getScreenCTM();
        const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height],
                         [b.x, b.y + b.height]];
        return {text: t.textContent.trim(),
                corners: corners.map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f])};
    })};
})"""
# Glyph boxes include the font's line gap: stacked tick labels may touch by a pixel without a reader
# seeing anything wrong. More than this is text drawn over text.
LABEL_TOLERANCE_PX = 2.0


class ChromiumUnavailable(RuntimeError):
    """No Chromium on PATH, and installing Debian's package failed; the message says what was tried."""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


def ensure_chromium() -> str:
    """The path of a Chromium binary, installing Debian's `chromium` package (apt) when none is on PATH."""
    if path := find_chromium():
        return path
    tried: list[str] = [f"looked for {', '.join(CHROMIUM_NAMES)} on PATH: none found"]
    prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            tried.append("not root, and no sudo to run apt-get with")
            raise ChromiumUnavailable(_explain(tried))
        prefix = ["sudo", "-n", *prefix]  # -n: fail rather than wait for a password
    if not shutil.which("apt-get"):
        tried.append("no apt-get: not a Debian-like system")
        raise ChromiumUnavailable(_explain(tried))

    install = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    result = _run(install, tried)
    if result.returncode != 0 and _lacks_package_lists(result.stdout + result.stderr):
        _run([*prefix, "apt-get", "update"], tried)
        result = _run(install, tried)
    if path := find_chromium():
        return path
    tried.append(f"after the install, still none of {', '.join(CHROMIUM_NAMES)} on PATH")
    raise ChromiumUnavailable(_explain(tried))


def _lacks_package_lists(output: str) -> bool:
    """apt's words for empty or stale package lists (a fresh container, or lists from a past release)."""
    markers = ("Unable to locate package", "has no installation candidate", "404  Not Found")
    return any(marker in output for marker in markers)


def _run(command: list[str], tried: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        # dpkg's maintainer scripts want ldconfig and friends, which live in the sbin folders.
        env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as error:
        result = subprocess.CompletedProcess(command, -1, "", str(error))
    output = (result.stdout + result.stderr).strip()[-1500:]
    tried.append(f"$ {' '.join(command)}  -> exit {result.returncode}\n{output}")
    return result


def _explain(tried: list[str]) -> str:
    steps = "\n".join(f"  - {step}" for step in tried)
    return (
        "The report's browser test needs Chromium (Debian's `chromium` package) and none could be had.\n"
        f"Tried:\n{steps}\n"
        "Install it by hand (apt-get install chromium) or put chromium / google-chrome on PATH."
    )


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """A headless system Chromium under Playwright, for as long as the `with` lasts."""
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageCheck:
    """What one page load showed. `clean` is true when nothing a reader would notice went wrong."""

    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)  # reported, not counted against `clean`
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page's scripts
    failed_requests: list[str] = field(default_factory=list)  # local files that did not load
    external_requests: list[str] = field(default_factory=list)  # blocked: the page must not use the network
    broken_images: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # expected selectors that match nothing
    invisible: list[str] = field(default_factory=list)  # expected selectors matching something not shown
    overlapping_labels: list[str] = field(default_factory=list)  # SVG texts over each other (`labels=True`)
    charts: int = 0  # inline SVGs with text whose labels were checked (`labels=True`)
    text: str | None = None  # inner text of `text_of`, when asked for

    @property
    def clean(self) -> bool:
        problems = (self.console_errors, self.page_errors, self.failed_requests, self.external_requests)
        return not any((*problems, self.broken_images, self.missing, self.invisible, self.overlapping_labels))

    def summary(self) -> str:
        lines = [f"title: {self.title!r}"]
        for name in (
            "console_errors",
            "page_errors",
            "failed_requests",
            "external_requests",
            "broken_images",
            "missing",
            "invisible",
            "overlapping_labels",
            "console_warnings",
        ):
            lines += [f"{name}: {item}" for item in getattr(self, name)]
        return "\n".join(lines)


def open_page(
    html_path: Path,
    screenshot: Path,
    *,
    browser: Browser | None = None,
    expect: Sequence[str] = (),
    text_of: str | None = None,
    viewport: tuple[int, int] = (1280, 900),
    labels: bool = False,
) -> PageCheck:
    """Load `html_path` from disk, check it, and save a full-page PNG to `screenshot`.

    `expect` holds CSS selectors (a section is `#its-id`); every element each matches must be shown with a
    non-zero size. `labels` also checks that no two texts of one inline SVG (a chart) overlap. Pass a
    `browser` from `chromium_browser()` to share one between pages; without it, one is started for this
    page alone.
    """
    if browser is None:
        with chromium_browser() as own:
            return open_page(
                html_path,
                screenshot,
                browser=own,
                expect=expect,
                text_of=text_of,
                viewport=viewport,
                labels=labels,
            )

    check = PageCheck()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = context.new_page()
        _listen(page, check)
        page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
        check.title = page.title()
        check.broken_images = page.evaluate(BROKEN_IMAGES_JS)
        for selector in expect:
            elements = page.locator(selector).all()
            if not elements:
                check.missing.append(selector)
            elif not all(_shown(element) for element in elements):
                check.invisible.append(selector)
        if text_of is not None:
            target = page.locator(text_of)
            check.text = target.first.inner_text() if target.count() else None
        if labels:
            charts = page.evaluate(SVG_TEXT_BOXES_JS)
            check.charts = sum(1 for chart in charts if chart["labels"])
            check.overlapping_labels = overlapping_labels(charts)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return check


def overlapping_labels(charts: list[dict[str, Any]], tolerance: float = LABEL_TOLERANCE_PX) -> list[str]:
    """'chart: "a" over "b" (n px)' for every pair of texts in one chart whose boxes overlap by more than
    `tolerance` pixels along every axis that could separate them (rotated boxes included), and
    'chart: "a" runs into "b"' for level texts side by side on one line with less than MIN_GAP_PX between
    them (tick labels that touch read as one number: "1000012500")."""
    found = []
    for chart in charts:
        labels = chart["labels"]
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                depth = _overlap_depth(a["corners"], b["corners"])
                if depth > tolerance:
                    found.append(f"{chart['chart']}: {a['text']!r} over {b['text']!r} ({depth:.1f} px)")
                elif _run_together(a["corners"], b["corners"]):
                    found.append(f"{chart['chart']}: {a['text']!r} runs into {b['text']!r}")
    return found


MIN_GAP_PX = 1.5


def _run_together(a: Sequence[Point], b: Sequence[Point]) -> bool:
    """Two level (unrotated) texts that share most of a line and are under MIN_GAP_PX apart sideways."""
    if not (_level(a) and _level(b)):
        return False
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = _bounds(a), _bounds(b)
    shared = min(ay1, by1) - max(ay0, by0)
    gap = max(bx0 - ax1, ax0 - bx1)
    return shared > 0.5 * min(ay1 - ay0, by1 - by0) and gap < MIN_GAP_PX


def _level(corners: Sequence[Point]) -> bool:
    return abs(corners[0][1] - corners[1][1]) < 0.5


def _bounds(corners: Sequence[Point]) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


Point = Sequence[float]


def _overlap_depth(a: Sequence[Point], b: Sequence[Point]) -> float:
    """How far two convex quadrilaterals overlap: the smallest overlap of their projections over the
    separating-axis candidates (each edge's normal). Zero or less: they do not overlap."""
    depth = math.inf
    for poly in (a, b):
        for k in range(len(poly)):
            (x0, y0), (x1, y1) = poly[k], poly[(k + 1) % len(poly)]
            nx, ny = y0 - y1, x1 - x0
            norm = math.hypot(nx, ny)
            if norm == 0:
                continue
            pa = [(x * nx + y * ny) / norm for x, y in a]
            pb = [(x * nx + y * ny) / norm for x, y in b]
            depth = min(depth, min(max(pa), max(pb)) - max(min(pa), min(pb)))
    return 0.0 if depth == math.inf else depth


def _listen(page: Page, check: PageCheck) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "net::ERR_BLOCKED_BY_CLIENT" not in message.text:
            check.console_errors.append(message.text)  # (the block's echo: already in external_requests)
        elif message.type == "warning":
            check.console_warnings.append(message.text)

    def on_failed(request: Request) -> None:
        if request.url.startswith(LOCAL_SCHEMES):  # blocked external ones are in external_requests
            check.failed_requests.append(f"{request.url} ({request.failure})")

    def on_request(request: Request) -> None:
        if not request.url.startswith(LOCAL_SCHEMES):
            check.external_requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: check.page_errors.append(f"{error.name}: {error.message}"))
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    # Recorded by on_request, then refused: nothing leaves the machine, and no load waits on a timeout.
    page.route(lambda url: not url.startswith(LOCAL_SCHEMES), lambda route: route.abort("blockedbyclient"))


def _shown(element: Locator) -> bool:
    box = element.bounding_box()
    return element.is_visible() and box is not None and box["width"] > 0 and box["height"] > 0
