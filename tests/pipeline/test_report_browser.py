"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

Fails on any console error, uncaught exception, error-level log entry (a blocked or failed load, a
Content-Security-Policy violation) or request for anything but the file itself. Saves a
full-page screenshot to tmp_path and, when CLUSTERSTAGE_SCREENSHOT_DIR is set, there as well.
Skips when Chromium is absent (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.report import write_report
from tests.pipeline.test_report import CLUSTERS, EVIL, make_inputs

aiohttp = pytest.importorskip("aiohttp", reason="aiohttp (the DevTools client) is not installed")

CHROMIUM = (
    os.environ.get("CLUSTERSTAGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)
WIDTH = 1280
LOCAL_SCHEMES = ("file:", "data:", "about:", "devtools:", "chrome:")

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)),
    reason=f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)",
)


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    values: dict[str, object] = field(default_factory=dict)  # expression -> its value


def _describe_console(params: dict) -> str:
    parts = []
    for arg in params.get("args", []):
        parts.append(str(arg.get("value", arg.get("description", arg.get("type")))))
    return f"console.{params.get('type')}: {' '.join(parts)}"


def _describe_exception(params: dict) -> str:
    details = params.get("exceptionDetails", {})
    exception = details.get("exception", {})
    return f"uncaught: {exception.get('description') or details.get('text')}"


class _DevTools:
    """A minimal DevTools-protocol session on one page target."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, timeout: float = 30.0, **params: object) -> dict:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = await self.ws.receive_json(timeout=max(deadline - time.monotonic(), 0.01))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    async def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            message = await self.ws.receive_json(timeout=max(deadline - time.monotonic(), 0.01))
            if "method" in message:
                self.events.append(message)

    async def drain(self, seconds: float) -> None:
        """Collect what the page still logs shortly after load (timers, late errors)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.ws.receive_json(timeout=left)
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)

    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            method, params = e["method"], e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(_describe_console(params))
            elif method == "Runtime.exceptionThrown":
                out.append(_describe_exception(params))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                out.append(f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not url.startswith(LOCAL_SCHEMES):
                    out.append(f"network request: {url}")
        return out


class Chromium:
    """One headless Chromium with a new, empty profile; each visit opens its own tab."""

    def __init__(self, workdir: Path) -> None:
        self.profile = workdir / "profile"
        self.profile.mkdir(parents=True)
        self.log_path = workdir / "chromium.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start; see {self.log_path}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def visit(
        self, page: Path, *expressions: str, screenshot: bool = False, width: int = WIDTH
    ) -> PageVisit:
        """Load ``page`` in a window ``width`` px wide, evaluate ``expressions``, list its
        problems; a full-page screenshot on request."""
        run = self._visit(page, expressions, screenshot, width)
        return asyncio.run(asyncio.wait_for(run, timeout=120))

    async def _visit(
        self, page: Path, expressions: tuple[str, ...], screenshot: bool, width: int
    ) -> PageVisit:
        base = f"http://127.0.0.1:{self.port}/json"
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{base}/new?about:blank") as response:
                target = await response.json(content_type=None)
            try:
                url = target["webSocketDebuggerUrl"]
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    return await self._inspect(_DevTools(ws), page, expressions, screenshot, width)
            finally:
                async with http.get(f"{base}/close/{target['id']}"):
                    pass

    @staticmethod
    async def _inspect(
        tools: _DevTools, page: Path, expressions: tuple[str, ...], screenshot: bool, width: int
    ) -> PageVisit:
        for domain in ("Runtime", "Log", "Page", "Network"):
            await tools.call(f"{domain}.enable")
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        await tools.call("Page.navigate", url=page.resolve().as_uri())
        await tools.wait_for("Page.loadEventFired")
        await tools.drain(0.5)
        visit = PageVisit()
        for expression in expressions:
            result = await tools.call("Runtime.evaluate", expression=expression, returnByValue=True)
            visit.values[expression] = result.get("result", {}).get("value")
        if screenshot:
            size = (await tools.call("Page.getLayoutMetrics"))["cssContentSize"]
            shot = await tools.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
            )
            visit.screenshot = base64.b64decode(shot["data"])
        await tools.drain(0.2)
        visit.errors = tools.problems()
        return visit


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium"))
    yield chromium
    chromium.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _keep_screenshot(data: bytes, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    folder = os.environ.get("CLUSTERSTAGE_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)
    return path


def test_report_renders_without_console_errors(browser: Chromium, tmp_path: Path) -> None:
    page = write_report(make_inputs(), tmp_path / "wenzhou-like.html")
    result = browser.visit(
        page,
        "document.querySelectorAll('details.card').length",
        "document.querySelectorAll('svg.bubbles .bubble circle').length",
        "document.scripts.length",
        "document.querySelector('h1').textContent",
        screenshot=True,
    )
    shot = _keep_screenshot(result.screenshot, tmp_path, "report.png")
    assert result.errors == []
    values = list(result.values.values())
    assert values == [len(CLUSTERS), len(CLUSTERS), 0, "Wenzhou-like"]
    width, height = _png_size(shot.read_bytes())
    assert width == WIDTH and height > 2000  # the whole page, not just the first screen


@pytest.mark.parametrize("width", [WIDTH, 480])
def test_the_size_key_matches_the_bubbles_at_any_width(
    browser: Chromium, tmp_path: Path, width: int
) -> None:
    page = write_report(make_inputs(), tmp_path / "key.html")
    result = browser.visit(
        page,
        # the largest bubble is drawn first: footwear, 42,000 employees
        "document.querySelector('svg.bubbles .bubble circle').getBoundingClientRect().width",
        "[...document.querySelectorAll('.size-key circle')]"
        ".map(c => c.getBoundingClientRect().width)",
        "[...document.querySelectorAll('.size-key text')].map(t => t.textContent)"
        ".filter(t => /^[0-9,]+$/.test(t))",
        width=width,
    )
    assert result.errors == []
    largest, keys, labels = result.values.values()
    assert labels == ["20,000", "2,000"]
    for label, drawn in zip(labels, keys, strict=True):
        expected = largest * math.sqrt(int(label.replace(",", "")) / 42_000)
        assert drawn == pytest.approx(expected, rel=0.02), (width, label)


def test_hostile_names_stay_text_in_the_browser(browser: Chromium, tmp_path: Path) -> None:
    inputs = make_inputs(region=EVIL, rename={"footwear": "<img src=x onerror=alert(2)>"})
    page = write_report(inputs, tmp_path / "evil.html")
    result = browser.visit(
        page,
        "document.scripts.length",
        "document.images.length",
        "document.querySelector('h1').textContent",
        "[...document.querySelectorAll('.card-title')].map(e => e.textContent).join('|')",
    )
    assert result.errors == []
    scripts, images, h1, titles = result.values.values()
    assert scripts == 0 and images == 0
    assert h1 == EVIL
    assert "<img src=x onerror=alert(2)>" in str(titles).split("|")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<script>console.error('deliberate failure')</script>", "deliberate failure"),
        ("<script>setTimeout(() => { throw new Error('late boom') }, 50)</script>", "late boom"),
        ("<script>undefinedFunction()</script>", "undefinedFunction"),
        ('<img src="http://127.0.0.1:9/pixel.png" alt="">', "http://127.0.0.1:9/pixel.png"),
    ],
    ids=["console-error", "thrown-later", "reference-error", "network"],
)
def test_the_check_catches_a_broken_page(
    browser: Chromium, tmp_path: Path, body: str, expected: str
) -> None:
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><body><p>x</p>{body}</body></html>", encoding="utf-8")
    result = browser.visit(page)
    assert result.errors, "a page with an error must not pass"
    assert any(expected in e for e in result.errors), result.errors
