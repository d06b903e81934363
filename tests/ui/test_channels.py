"""The channels of a multichannel image in the browse page, in a real Chromium against real
Gunicorn: toggled, the deep-zoom view retiles with the inline rendering; "Save as" stores it."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from selenium.webdriver.common.by import By

from image_repo.ui.assets import VENDOR_DIR
from tests.channels.conftest import write_ome
from tests.fixtures.browser import screenshot, unavailable
from tests.fixtures.server import Server, running_server
from tests.ui.conftest import WRITE_TOKEN, wait

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
FINGERPRINT = """
const c = document.querySelector('#deep-zoom canvas');
if (!c || !c.width) return null;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let r = 0, g = 0, b = 0;
for (let i = 0; i < d.length; i += 4 * 97) { r += d[i]; g += d[i + 1]; b += d[i + 2]; }
return [r, g, b];
"""


@pytest.fixture(scope="module")
def slide_server(tmp_path_factory) -> Iterator[Server]:
    """Writes need a token; a 4-channel OME-TIFF uploaded and its pyramid built."""
    root = tmp_path_factory.mktemp("channels")
    config = {"data_dir": str(root / "data"), "write_tokens": [WRITE_TOKEN], "pyramid_builders": 1}
    with running_server(config, root / "server", workers=1) as server:
        src = write_ome(root / "slide.ome.tif", 4, 1500, 1200)
        assert requests.put(f"{server.url}/images/lab/slide.tif", data=src.read_bytes(), headers=AUTH, timeout=60).status_code == 201
        deadline = time.monotonic() + 180
        while requests.get(f"{server.url}/images/lab/slide?meta=true", timeout=30).json()["pyramid"]["state"] != "ready":
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        yield server


def test_toggling_a_channel_retiles_the_view_and_save_as_stores_the_rendering(slide_server, page):
    if not (VENDOR_DIR / "openseadragon.min.js").exists():
        unavailable("OpenSeadragon is not installed: ./run test runs npm ci when node and npm are there")
    page.get(slide_server.url + "/?image=lab/slide")
    wait(page, lambda d: d.find_element(By.ID, "deep-zoom").get_attribute("data-opened") == "true", "OpenSeadragon to open")
    rows = wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#channel-list .channel"), "the channel list")
    assert [r.find_element(By.TAG_NAME, "label").text for r in rows] == ["DNA", "CD45", "CD3", "KI67"]
    boxes = [r.find_element(By.CSS_SELECTOR, "input[type=checkbox]") for r in rows]
    assert all(b.is_selected() for b in boxes)  # the default rendering shows the first four
    assert [r.find_element(By.CSS_SELECTOR, "input[type=color]").get_attribute("value") for r in rows] == [
        "#ff0000", "#00ff00", "#0000ff", "#ffffff"]  # the OME colours
    assert len(rows[0].find_elements(By.CSS_SELECTOR, ".window input[type=range]")) == 2  # two handles
    assert "write token" in page.find_element(By.ID, "rendering-save-hint").text
    before = wait(page, lambda d: d.execute_script(FINGERPRINT) if d.execute_script(
        "return document.querySelectorAll('#deep-zoom canvas').length && IR.viewer.osd().world.getItemAt(0).getFullyLoaded()")
        else None, "the default rendering drawn")

    for off in (boxes[1], boxes[3]):  # CD45 and KI67 off: DNA (red) and CD3 (blue) stay
        off.click()
    wanted = page.execute_script("return 'channels:' + IR.channels.inline()")
    assert wanted.startswith("channels:0:FF0000:") and ",2:0000FF:" in wanted and ",1:" not in wanted
    wait(page, lambda d: d.find_element(By.ID, "deep-zoom").get_attribute("data-quality") == wanted, "the view retiled")
    tiles = [e for e in page.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
             if "/iiif/3/" in e and "channels:" in requests.utils.unquote(e)]
    assert tiles, "no tile of the inline rendering was asked for"
    after = page.execute_script(FINGERPRINT)
    assert after != before and after[1] < before[1]  # green (CD45) gone from the picture
    screenshot(page, "channels")

    # The window's high handle down: the same channels, brighter.
    high = rows[0].find_element(By.CSS_SELECTOR, "input.high")
    page.execute_script("arguments[0].value = '20000'; arguments[0].dispatchEvent(new Event('input'));", high)
    brighter = page.execute_script("return 'channels:' + IR.channels.inline()")
    assert brighter.startswith("channels:0:FF0000:") and ":20000," in brighter
    wait(page, lambda d: d.find_element(By.ID, "deep-zoom").get_attribute("data-quality") == brighter, "the new window")
    assert page.execute_script(FINGERPRINT)[0] > after[0]

    page.execute_script("sessionStorage.setItem('image_repo.write_token', arguments[0])", WRITE_TOKEN)
    page.find_element(By.ID, "rendering-name").send_keys("dna-cd3")
    page.find_element(By.CSS_SELECTOR, "#rendering-save button[type=submit]").click()
    wait(page, lambda d: d.find_element(By.ID, "channels-status").text.startswith("Saved as dna-cd3"), "the save")
    saved = requests.get(f"{slide_server.url}/images/lab/slide?meta=true", timeout=30).json()["renderings"]["dna-cd3"]
    assert "channels:" + saved["inline"] == brighter
    info = requests.get(f"{slide_server.url}/iiif/3/lab%2Fslide/info.json", timeout=30).json()
    assert "dna-cd3" in info["extraQualities"]
    assert page.find_element(By.ID, "rendering-pick").get_attribute("value") == "dna-cd3"
