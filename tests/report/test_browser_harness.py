"""The browser harness can fail: each fault a report could have is caught on a hand-written page, a clean
page passes, and a missing Chromium is installed with apt or named in a loud failure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.report import browser as harness
from tests.report.browser import ChromiumUnavailable, PageCheck, ensure_chromium, open_page

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<section id="summary"><h2>Summary</h2><p id="verdict">PyTorch, by 1.4x</p></section>
{body}
</body></html>
"""


def _check(browser: Browser, tmp_path: Path, body: str, expect: tuple[str, ...] = ()) -> PageCheck:
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(title="Harness", body=body), encoding="utf-8")
    return open_page(page, tmp_path / "page.png", browser=browser, expect=expect, text_of="#verdict")


@pytest.mark.slow
def test_clean_page_with_inline_svg_is_clean(browser: Browser, tmp_path: Path) -> None:
    body = """<section id="speed"><h2>Speed</h2>
    <svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">
      <rect x="10" y="40" width="120" height="110" fill="#ee4c2c"/><rect x="170" y="80" width="120"
      height="70" fill="#ff8f00"/><text x="10" y="20">samples/s</text></svg></section>
    <img alt="pixel" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8
z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==">"""
    check = _check(browser, tmp_path, body, expect=("#summary", "#speed", "#speed svg", "img"))
    assert check.clean, check.summary()
    assert check.title == "Harness"
    assert check.text == "PyTorch, by 1.4x"
    assert check.console_warnings == []
    png = (tmp_path / "page.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


@pytest.mark.slow
def test_broken_image_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _check(browser, tmp_path, '<img src="missing.png" alt="plot">')
    assert check.broken_images == ["missing.png"]
    assert len(check.failed_requests) == 1 and "missing.png" in check.failed_requests[0]
    assert not check.clean


@pytest.mark.slow
def test_console_error_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _check(browser, tmp_path, '<script>console.warn("w"); console.error("x");</script>')
    assert check.console_errors == ["x"]
    assert check.console_warnings == ["w"]
    assert check.page_errors == []
    assert not check.clean


@pytest.mark.slow
def test_uncaught_exception_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _check(browser, tmp_path, '<script>throw new Error("boom");</script>')
    assert check.page_errors == ["Error: boom"]
    assert not check.clean


@pytest.mark.slow
def test_hidden_and_missing_sections_are_caught(browser: Browser, tmp_path: Path) -> None:
    body = """<section id="hidden" style="display:none"><p>never shown</p></section>
    <section id="empty"></section>"""
    check = _check(browser, tmp_path, body, expect=("#summary", "#hidden", "#empty", "#absent"))
    assert check.invisible == ["#hidden", "#empty"]  # display:none, and a zero-height box
    assert check.missing == ["#absent"]
    assert not check.clean


@pytest.mark.slow
def test_external_request_is_caught_and_blocked(browser: Browser, tmp_path: Path) -> None:
    check = _check(browser, tmp_path, '<img src="https://example.invalid/x.png" alt="remote">')
    assert check.external_requests == ["https://example.invalid/x.png"]
    assert check.broken_images == ["https://example.invalid/x.png"]  # refused, so it never loads
    assert check.failed_requests == [] and check.console_errors == []
    assert not check.clean


@pytest.mark.slow
def test_every_fault_on_one_page(browser: Browser, tmp_path: Path) -> None:
    body = """<section id="hidden" style="display:none"><p>hidden</p></section>
    <img src="missing.png" alt="local"><img src="https://example.invalid/x.png" alt="remote">
    <script>console.error("x"); throw new Error("boom");</script>"""
    check = _check(browser, tmp_path, body, expect=("#summary", "#hidden"))
    assert "x" in check.console_errors
    assert check.page_errors == ["Error: boom"]
    assert check.broken_images == ["missing.png", "https://example.invalid/x.png"]
    assert check.external_requests == ["https://example.invalid/x.png"]
    assert check.invisible == ["#hidden"]
    summary = check.summary()
    assert "boom" in summary and "missing.png" in summary and "#hidden" in summary


class FakeApt:
    """Stands in for apt-get: records commands, and makes Chromium appear once an install succeeds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, outcomes: list[tuple[int, str]], root: bool = True):
        self.commands: list[list[str]] = []
        self.outcomes = outcomes
        self.installed = False
        self.tools = {"apt-get": "/usr/bin/apt-get", "sudo": "/usr/bin/sudo"}
        monkeypatch.setattr(harness.os, "geteuid", lambda: 0 if root else 1000)
        monkeypatch.setattr(harness.shutil, "which", self.which)
        monkeypatch.setattr(harness.subprocess, "run", self.run)

    def which(self, name: str) -> str | None:
        if name == "chromium" and self.installed:
            return "/usr/bin/chromium"
        return self.tools.get(name)

    def run(self, command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        code, output = self.outcomes.pop(0)
        if code == 0 and "install" in command:
            self.installed = True
        return subprocess.CompletedProcess(command, code, "", output)


def test_ensure_chromium_installs_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, [(0, "")])
    assert ensure_chromium() == "/usr/bin/chromium"
    assert apt.commands == [
        [
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "chromium",
        ]
    ]


def test_ensure_chromium_updates_lists_only_when_apt_lacks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, [(100, "E: Unable to locate package chromium"), (0, ""), (0, "")], root=False)
    assert ensure_chromium() == "/usr/bin/chromium"
    verbs = [command[command.index("apt-get") + 1] for command in apt.commands]
    assert verbs == ["install", "update", "install"]
    assert all(command[:2] == ["sudo", "-n"] for command in apt.commands)


def test_ensure_chromium_fails_loudly_with_what_it_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt(monkeypatch, [(100, "E: Could not open lock file /var/lib/dpkg/lock-frontend")])
    with pytest.raises(ChromiumUnavailable) as raised:
        ensure_chromium()
    assert len(apt.commands) == 1  # a lock, not missing lists: no update
    message = str(raised.value)
    assert "apt-get install -y --no-install-recommends chromium" in message
    assert "exit 100" in message and "lock-frontend" in message


@pytest.mark.slow
def test_chart_labels_over_or_into_each_other_are_caught_and_rotated_neighbours_are_not(
    browser: Browser, tmp_path: Path
) -> None:
    body = """<section id="chart"><svg xmlns="http://www.w3.org/2000/svg" width="400" height="200">
      <text x="20" y="40" font-size="12">keras-tflite-fp32</text>
      <text x="60" y="44" font-size="12">torch-onnx</text>
      <text x="20" y="120" font-size="12" transform="rotate(-40 20 120)">torch-compile</text>
      <text x="60" y="120" font-size="12" transform="rotate(-40 60 120)">keras-eager</text>
      <text x="300" y="180" font-size="12"> </text><text x="300" y="180" font-size="12">alone</text>
      <text x="200" y="40" font-size="12" text-anchor="end">10000</text>
      <text x="200.5" y="40" font-size="12">12500</text>
    </svg></section>"""
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(title="Labels", body=body), encoding="utf-8")
    check = open_page(page, tmp_path / "page.png", browser=browser, labels=True)
    assert check.charts == 1
    assert len(check.overlapping_labels) == 2, check.overlapping_labels
    assert "'keras-tflite-fp32' over 'torch-onnx'" in check.overlapping_labels[0]
    assert "'10000' runs into '12500'" in check.overlapping_labels[1]
    assert not check.clean
