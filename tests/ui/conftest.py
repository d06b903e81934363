"""Servers for the browse-page tests, pictures worth looking at, and waits on the page."""
from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from tests.fixtures.browser import console_errors, sent_requests
from tests.fixtures.server import Server, running_server

READ_TOKEN = "reader-secret-1"
WRITE_TOKEN = "writer-secret-2"


def picture(width: int, height: int, seed: int, kind: str = "JPEG") -> bytes:
    """A colourful picture (gradient, rings, a label) that looks different for each seed."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 127 * np.sin(x / width * 3 + seed * 0.9)
    g = 127 + 127 * np.sin(y / height * 4 + seed * 0.7)
    b = 127 + 127 * np.cos((x + y) / (width + height) * 5 + seed * 1.3)
    base = Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(base)
    cx, cy = width * (0.3 + 0.4 * ((seed * 13) % 10) / 10), height * 0.5
    for i in range(6, 0, -1):
        radius = min(width, height) * i / 14
        shade = (255 - i * 30, 40 + i * 25, 90 + i * 20)
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=shade, width=max(2, width // 200))
    font = ImageFont.load_default(size=max(10, height // 10))
    draw.rectangle([width * 0.05, height * 0.05, width * 0.3, height * 0.2], fill=(255, 255, 255))
    draw.text((width * 0.07, height * 0.065), f"#{seed}", fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    base.save(out, kind, quality=88) if kind == "JPEG" else base.save(out, kind)
    return out.getvalue()


def noise(width: int, height: int) -> bytes:
    """A PNG of random pixels: as many bytes as pixels x 3, whatever the compressor does."""
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG")
    return out.getvalue()


def put(server: Server, name: str, data: bytes, token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.put(f"{server.url}/images/{quote(name)}", data=data, headers=headers, timeout=30)
    assert response.status_code in (200, 201), response.text


def names(server: Server, regex: str, token: str | None = None) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(f"{server.url}/images", params={"regex": regex}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    listed: list[str] = response.json()
    return listed


@pytest.fixture(scope="module")
def open_server(tmp_path_factory) -> Iterator[Server]:
    """No tokens; url_key set (temporary URLs, direct imports)."""
    root = tmp_path_factory.mktemp("open")
    with running_server({"data_dir": str(root / "data"), "url_key": "k"}, root / "server", workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> Iterator[Server]:
    """Read and write tokens required."""
    root = tmp_path_factory.mktemp("tokens")
    config = {"data_dir": str(root / "data"), "url_key": "k", "read_tokens": [READ_TOKEN], "write_tokens": [WRITE_TOKEN]}
    with running_server(config, root / "server", workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory) -> Iterator[Server]:
    """Deep zoom turned off (browse_deep_zoom: false): the viewer shows a plain image and says why."""
    root = tmp_path_factory.mktemp("plain")
    config = {"data_dir": str(root / "data"), "browse_deep_zoom": False}
    with running_server(config, root / "server", workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def small_upload_server(tmp_path_factory) -> Iterator[Server]:
    """max_upload_bytes of 200 kB: a larger file goes through the direct imports (url_key set)."""
    root = tmp_path_factory.mktemp("small")
    config = {"data_dir": str(root / "data"), "url_key": "k", "max_upload_bytes": 200_000}
    with running_server(config, root / "server", workers=1) as server:
        yield server


@pytest.fixture
def downloads(browser, tmp_path) -> Any:
    """A fresh directory the browser saves downloads into."""
    target = tmp_path / "downloads"
    target.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(target)})
    return target


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """The module's browser with a clean tab state; after the test, the console must hold no errors."""
    console_errors(browser)  # drop what earlier tests left
    sent_requests(browser)
    yield browser
    errors = console_errors(browser)
    if browser.current_url.startswith("http"):
        browser.execute_script("sessionStorage.clear()")
    assert errors == [], "the browser console has errors:\n" + "\n".join(errors)


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` until it is truthy; fail saying ``what`` was awaited (a deadline, not a timing assertion)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        errors = console_errors(driver)
        pytest.fail(f"waited {timeout:.0f} s for {what}; console: {errors}")


LOADED_THUMBS = """
return Array.from(document.querySelectorAll('#grid .tile img')).map(
  (img) => [img.dataset.name, img.complete && img.naturalWidth, img.currentSrc || img.src]);
"""
