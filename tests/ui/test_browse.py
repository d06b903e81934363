"""The browse page in a real Chromium against real Gunicorn: what a person sees and does."""
from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from image_repo.ui.assets import VENDOR_DIR
from tests.fixtures.browser import console_errors, screenshot, sent_requests, unavailable
from tests.ui.conftest import LOADED_THUMBS, READ_TOKEN, WRITE_TOKEN, names, noise, picture, put, wait

pytestmark = pytest.mark.slow
BOXES = {"160", "240", "320", "480", "640"}


def browse(driver, server, regex: str = "") -> None:
    driver.get(server.url + "/" + (f"?regex={quote(regex)}" if regex else ""))


def thumbs_loaded(driver, expected: list[str]):
    rows = driver.execute_script(LOADED_THUMBS)
    loaded = {name: src for name, width, src in rows if width}
    return loaded if set(expected) <= set(loaded) else None


def has_iiif(server, name: str) -> bool:
    return requests.get(f"{server.url}/iiif/3/{quote(name, safe='')}/info.json", timeout=30).status_code == 200


def test_gallery_shows_thumbnails_that_loaded_and_moves_by_keyboard(open_server, page):
    expected = ["gallery/harbour at dawn", "gallery/2024/field", "gallery/2024/forest", "gallery/meadow",
                "gallery/night sky", "gallery/river"]
    for seed, name in enumerate(expected):
        put(open_server, name, picture(900 + seed * 50, 640 if seed % 2 else 900, seed))
    browse(page, open_server, "gallery/.*")
    loaded = wait(page, lambda d: thumbs_loaded(d, expected), "every thumbnail to load (naturalWidth > 0)")
    for src in loaded.values():  # thumbnails, in one of the few sizes shared through the server's cache
        assert "thumbnail=true" in src and src.split("xsize=")[1].split("&")[0] in BOXES, src
    captions = [e.text for e in page.find_elements(By.CSS_SELECTOR, "#grid .caption")]
    assert captions == ["field", "forest", "harbour at dawn", "meadow", "night sky", "river"]
    assert [e.text for e in page.find_elements(By.CSS_SELECTOR, "#grid .group")] == ["2024/", "gallery/"]
    assert [e.text for e in page.find_elements(By.CSS_SELECTOR, "#crumbs li")] == ["All images", "gallery"]
    alts = [e.get_attribute("alt") for e in page.find_elements(By.CSS_SELECTOR, "#grid img")]
    assert alts == sorted(expected)
    screenshot(page, "gallery")

    tiles = page.find_elements(By.CSS_SELECTOR, "#grid .tile > a")
    tiles[0].send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element == tiles[1]
    page.switch_to.active_element.send_keys(Keys.END)
    assert page.switch_to.active_element == tiles[-1]
    page.switch_to.active_element.send_keys(Keys.HOME)
    page.switch_to.active_element.send_keys(Keys.ENTER)
    wait(page, lambda d: "image=" in d.current_url and d.find_element(By.ID, "viewer-title").text, "the image page")
    assert page.find_element(By.ID, "viewer-title").text == "gallery/2024/field"
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(page, lambda d: d.find_element(By.ID, "gallery").is_displayed(), "Escape to go back to the gallery")


def test_gallery_pages_through_a_long_listing(open_server, page):
    for i in range(130):  # more than one page of 120
        put(open_server, f"many/n{i:03d}", picture(64, 48, i))
    browse(page, open_server, "many/.*")
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .tile")) == 120, "the first page")
    page.execute_script("document.getElementById('more').scrollIntoView()")
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .tile")) == 130, "the second page")
    assert page.find_element(By.ID, "gallery-status").text == "Showing all 130 images."
    listings = [r["url"] for r in sent_requests(page) if "/images?" in r["url"] and "limit=" in r["url"]]
    assert len(listings) == 2 and "marker=many%2Fn119" in listings[1], listings


def test_filter_takes_re2_and_shows_its_errors_inline(open_server, page):
    put(open_server, "filter/cat", picture(80, 60, 1))
    put(open_server, "filter/dog", picture(80, 60, 2))
    browse(page, open_server)
    box = wait(page, lambda d: d.find_element(By.ID, "regex"), "the filter box")
    box.send_keys("filter/(d.*" + Keys.ENTER)
    error = wait(page, lambda d: d.find_element(By.ID, "regex-error").text, "the RE2 error under the box")
    expected = requests.get(f"{open_server.url}/images", params={"regex": "filter/(d.*"}, timeout=30).json()["message"]
    assert error == expected and error.startswith("regex:")
    assert box.get_attribute("aria-invalid") == "true"
    errors = console_errors(page)  # the 400 itself is the one thing the console reports
    assert len(errors) == 1 and "400" in errors[0], errors
    box.send_keys(")" + Keys.ENTER)
    wait(page, lambda d: thumbs_loaded(d, ["filter/dog"]), "the filtered gallery")
    assert [e.get_attribute("alt") for e in page.find_elements(By.CSS_SELECTOR, "#grid img")] == ["filter/dog"]
    assert page.find_element(By.ID, "regex-error").text == ""


def test_hostile_names_are_shown_as_text(open_server, page):
    hostile = ["hostile/<b>x</b>", "hostile/<img src=x onerror=alert(1)>", "hostile/&amp; \"quoted\" 'name'"]
    for i, name in enumerate(hostile):
        put(open_server, name, picture(120, 90, i))
    browse(page, open_server, "hostile/.*")
    wait(page, lambda d: thumbs_loaded(d, hostile), "the hostile names' thumbnails")
    page_text = page.find_element(By.ID, "grid").text
    for name in hostile:
        assert name.rsplit("/", 1)[-1] in page_text or name.split("/", 1)[1].split("/")[-1] in page_text
    assert page.execute_script("return document.querySelectorAll('#grid b, #grid img[src=\"x\"]').length") == 0
    page.find_element(By.CSS_SELECTOR, f"#grid a[title='{hostile[1]}']").click()
    title = wait(page, lambda d: d.find_element(By.ID, "viewer-title").text, "the image page")
    assert title == hostile[1]
    assert page.execute_script("return document.querySelectorAll('#viewer-title *, #meta b, main img[src=\"x\"]').length") == 0
    assert page.title == hostile[1] + " · image_repo"
    page.get(open_server.url + "/?" + "image=" + quote(hostile[0]))
    wait(page, lambda d: d.find_element(By.ID, "viewer-title").text == hostile[0], "the <b> name as text")
    assert page.execute_script("return document.querySelectorAll('b').length") == 0


def test_opening_an_image_starts_the_viewer_which_fetches_iiif_tiles(open_server, page):
    name = "viewer/harbour panorama"
    put(open_server, name, picture(3000, 2000, 7))
    assert has_iiif(open_server, name), "GET /iiif/3/{id}/info.json does not answer: deep zoom cannot start"
    if not (VENDOR_DIR / "openseadragon.min.js").exists():
        unavailable("OpenSeadragon is not installed: ./run test runs npm ci when node and npm are there")
    browse(page, open_server, "viewer/.*")
    wait(page, lambda d: thumbs_loaded(d, [name]), "the thumbnail")
    sent_requests(page)
    page.find_element(By.CSS_SELECTOR, "#grid .tile > a").click()
    wait(page, lambda d: d.find_element(By.ID, "deep-zoom").get_attribute("data-opened") == "true", "OpenSeadragon to open")
    tiles = wait(page, lambda d: [r for r in d.execute_script(RESOURCES) if "/iiif/3/" in r[0] and not r[0].endswith("info.json")],
                 "IIIF tile requests")
    assert all(status in (0, 200) for _, status in tiles), tiles  # 0: the browser withheld it (cross-origin)
    assert quote(name, safe="") in tiles[0][0]
    wait(page, lambda d: d.execute_script(CANVAS_DRAWN), "tiles drawn on the canvas")
    notice = page.find_element(By.ID, "viewer-notice").text
    assert notice.startswith("Deep zoom: 3000 × 2000 pixels")
    before = len(page.execute_script(RESOURCES))
    page.find_element(By.ID, "zoom-in").click()
    wait(page, lambda d: len([r for r in d.execute_script(RESOURCES)[before:] if "/iiif/3/" in r[0]]) > 0,
         "tiles of a deeper level after the zoom-in button")
    canvas = page.find_element(By.CSS_SELECTOR, "#deep-zoom .openseadragon-canvas")
    assert canvas.get_attribute("aria-label") == name + " (deep zoom)"
    canvas.click()
    assert page.switch_to.active_element == canvas  # the viewer takes keyboard focus
    zoom, x = page.execute_script(VIEWPORT)
    canvas.send_keys("+")
    wait(page, lambda d: d.execute_script(VIEWPORT)[0] > zoom * 1.05, "a zoom from the + key")
    zoom, x = page.execute_script(VIEWPORT)
    canvas.send_keys(Keys.ARROW_RIGHT)
    wait(page, lambda d: d.execute_script(VIEWPORT)[1] > x, "a pan to the right from the arrow key")
    wait(page, lambda d: d.execute_script("return IR.viewer.osd().world.getItemAt(0).getFullyLoaded()"), "the tiles in view")
    # Nothing but the picture at the view's top edge: no element over the canvas, and any white there
    # is the picture's own white label (panned almost out of view), not a bar of the page.
    for x, y, over, white, ix, iy in page.execute_script(TOP_EDGE):
        assert over == "openseadragon-canvas", (x, y, over)
        if white:
            assert LABEL[0] - 8 <= ix <= LABEL[2] + 8 and LABEL[1] - 8 <= iy <= LABEL[3] + 8, (x, y, ix, iy)
    screenshot(page, "viewer")
    assert [k.text for k in page.find_elements(By.CSS_SELECTOR, "#meta dt")][:4] == ["name", "key", "bytes", "sha256"]


def test_a_broken_original_gets_the_servers_reasons_not_a_blank_page(open_server, page):
    # Bytes that are no image, left in the store as another tool might: every answer about it is an error.
    broken = open_server_originals(open_server) / "broken" / "scan.jpg"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    page.get(open_server.url + "/?image=broken/scan")
    notice = wait(page, lambda d: "could not be shown" in d.find_element(By.ID, "viewer-notice").text
                  and d.find_element(By.ID, "viewer-notice").text, "the viewer's notice")
    info = requests.get(f"{open_server.url}/iiif/3/broken%2Fscan/info.json", timeout=30)
    assert info.status_code >= 400
    assert f"Deep zoom is unavailable: the IIIF service answered {info.status_code}: {info.json()['message']}" in notice
    shown = requests.get(f"{open_server.url}/images/broken/scan", params={"xsize": 10}, timeout=30).json()["message"]
    assert notice.endswith("The image could not be shown: " + shown)
    assert page.find_element(By.ID, "meta").text.startswith("No metadata:")
    assert all(any(str(code) in e for code in (400, 404, 415, 422, 500)) for e in console_errors(page))


def open_server_originals(server) -> Path:
    return server.log.parent.parent / "data" / "originals"


def test_viewer_with_deep_zoom_off_shows_a_plain_image_metadata_and_downloads(plain_server, page):
    name = "plain/lake"
    put(plain_server, name, picture(1200, 800, 11))
    page.get(plain_server.url + "/?image=" + quote(name))
    width = wait(page, lambda d: d.execute_script("const i = document.getElementById('plain'); return i.complete && i.naturalWidth"),
                 "the plain image")
    src = page.find_element(By.ID, "plain").get_attribute("src")
    box_w, box_h = (int(src.split(f"{p}=")[1].split("&")[0]) for p in ("xsize", "ysize"))
    height = page.execute_script("return document.getElementById('plain').naturalHeight")
    assert max(width / min(1200, box_w), height / min(800, box_h)) == pytest.approx(1, abs=0.01)  # fits the stage
    assert page.find_element(By.ID, "plain").get_attribute("alt") == name
    assert "browse_deep_zoom is false" in page.find_element(By.ID, "viewer-notice").text
    meta = dict(zip([e.text for e in page.find_elements(By.CSS_SELECTOR, "#meta dt")],
                    [e.text for e in page.find_elements(By.CSS_SELECTOR, "#meta dd")]))
    assert meta["name"] == name and meta["width"] == "1200" and len(meta["sha256"]) == 64
    labels = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#downloads button")]
    assert labels[0] == "Original, as uploaded" and "Full size PNG" in labels
    page.find_element(By.ID, "copy-url").click()
    share = wait(page, lambda d: d.find_element(By.ID, "share").text, "the temporary URL answer")
    assert "url_key" in share  # this server has none: the page says what is missing


LABEL = (150, 100, 900, 400)
"""The white box picture(3000, 2000, ...) draws for its label, in image pixels."""
TOP_EDGE = """
const v = IR.viewer.osd().viewport, stage = document.getElementById('deep-zoom').getBoundingClientRect();
const c = document.querySelector('#deep-zoom canvas'), k = c.width / c.clientWidth, ctx = c.getContext('2d');
const out = [];
for (let x = 2; x < 300; x += 12) for (const y of [1, 3, 6]) {
  const over = document.elementFromPoint(stage.left + x, stage.top + y);
  const px = ctx.getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1).data;
  const p = v.viewerElementToImageCoordinates(new OpenSeadragon.Point(x, y));
  out.push([x, y, over.closest('.openseadragon-canvas') ? 'openseadragon-canvas' : over.className || over.tagName,
            px[0] > 235 && px[1] > 235 && px[2] > 235, p.x, p.y]);
}
return out;
"""
VIEWPORT = "const v = IR.viewer.osd().viewport; return [v.getZoom(true), v.getCenter(true).x];"
RESOURCES = "return performance.getEntriesByType('resource').map((e) => [e.name, e.responseStatus || 0]);"
CANVAS_DRAWN = """
const canvas = document.querySelector('#deep-zoom canvas');
if (!canvas || !canvas.width) return false;
const ctx = canvas.getContext('2d');
const px = ctx.getImageData(Math.floor(canvas.width / 2), Math.floor(canvas.height / 2), 1, 1).data;
return px[3] > 0 && (px[0] + px[1] + px[2]) > 0;
"""


def test_upload_through_the_file_input(open_server, page, tmp_path):
    small, large, broken = tmp_path / "small.jpg", tmp_path / "large.png", tmp_path / "notes.jpg"
    small.write_bytes(picture(640, 480, 21))
    large.write_bytes(noise(360, 360))  # ~390 KB: at 200 KB/s long enough to be seen in flight
    broken.write_bytes(b"this is not an image at all")
    refused = requests.post(f"{open_server.url}/images/probe/notes.jpg", files={"file": ("notes.jpg", broken.read_bytes())},
                            timeout=30).json()["message"]
    browse(page, open_server, "uploads/.*")
    page.find_element(By.ID, "upload-toggle").click()
    folder = page.find_element(By.ID, "upload-dir")
    folder.clear()
    folder.send_keys("uploads")
    sent_requests(page)
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions",
                         {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 100 * 1024})
    try:
        page.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in (small, large, broken)))
        # The gallery below lists what is stored while the large one still uploads (not "No images here yet").
        wait(page, lambda d: d.execute_script(IN_FLIGHT) and d.execute_script(LISTED) == ["uploads/small"],
             "the large upload in flight, the others finished, the stored one in the gallery")
        assert "No images here yet" not in page.find_element(By.ID, "gallery-status").text
        screenshot(page, "upload")
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions",
                             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    wait(page, lambda d: d.execute_script("return document.querySelectorAll('#queue .job.running').length === 0"),
         "every upload to finish")
    states = dict(page.execute_script(JOB_STATES))
    assert states == {"uploads/small": "stored", "uploads/large": "stored", "uploads/notes": "failed: " + refused}
    assert names(open_server, "uploads/.*") == ["uploads/large", "uploads/small"]
    posts = {r["url"].rsplit("/", 1)[-1]: r["headers"] for r in sent_requests(page) if r["method"] == "POST"}
    assert posts["small.jpg"]["X-Checksum-Sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()
    assert posts["large.png"]["X-Checksum-Sha256"] == hashlib.sha256(large.read_bytes()).hexdigest()
    errors = console_errors(page)
    assert len(errors) == 1 and "415" in errors[0], errors
    wait(page, lambda d: thumbs_loaded(d, ["uploads/large", "uploads/small"]), "the gallery showing the uploads")

    small.write_bytes(picture(640, 480, 23))  # other bytes under a stored name: a 409, then "Replace it"
    page.find_element(By.ID, "file-input").send_keys(str(small))
    replace = wait(page, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#queue .job:last-child button")
                                    if b.text == "Replace it" and b.is_displayed()], "the conflict and its Replace button")
    assert "409" in " ".join(console_errors(page))
    replace[0].click()  # no new selection: the job keeps its file
    wait(page, lambda d: d.execute_script(JOB_STATES)[-1][1] == "stored", "the replacement")
    meta = requests.get(f"{open_server.url}/images/uploads/small", params={"meta": "true"}, timeout=30).json()
    assert meta["sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()


IN_FLIGHT = """
const jobs = Array.from(document.querySelectorAll('#queue .job'));
const by = (n) => jobs.find((j) => j.querySelector('.job-name').textContent === n);
const large = by('uploads/large'), small = by('uploads/small'), notes = by('uploads/notes');
if (!large || !small || !notes) return false;
const bar = large.querySelector('progress');
return bar.hasAttribute('value') && bar.value > 0.15 && bar.value < 0.85
  && small.classList.contains('done') && notes.classList.contains('failed');
"""
LISTED = "return Array.from(document.querySelectorAll('#grid .tile img')).map((img) => img.dataset.name);"
JOB_STATES = """
return Array.from(document.querySelectorAll('#queue .job')).map(
  (j) => [j.querySelector('.job-name').textContent, j.querySelector('.job-state').textContent]);
"""


def test_tokens_are_asked_for_kept_in_the_tab_and_sent_as_bearer(token_server, page, tmp_path):
    for i, name in enumerate(["secure/one", "secure/two", "secure/three"]):
        put(token_server, name, picture(500, 400, 30 + i), token=WRITE_TOKEN)
    browse(page, token_server, "secure/.*")
    dialog = wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "#token-dialog[open]"), "the token dialog")
    assert "needs a read token" in dialog.text
    page.find_element(By.ID, "token-read").send_keys(READ_TOKEN)
    page.find_element(By.CSS_SELECTOR, "#token-form button[value=save]").click()
    loaded = wait(page, lambda d: thumbs_loaded(d, ["secure/one", "secure/two", "secure/three"]), "thumbnails with the token")
    assert all(src.startswith("blob:") for src in loaded.values())  # fetched with the header, shown from memory

    upload = tmp_path / "fresh.jpg"
    upload.write_bytes(picture(300, 200, 40))
    page.find_element(By.ID, "upload-toggle").click()
    page.find_element(By.ID, "upload-dir").send_keys(Keys.CONTROL, "a")
    page.find_element(By.ID, "upload-dir").send_keys("secure")
    page.find_element(By.ID, "file-input").send_keys(str(upload))
    # No write token yet: the page asks for one; the upload fails with the server's 401 and waits for a retry.
    wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "#token-dialog[open]"), "the token dialog asking for a write token")
    failed = wait(page, lambda d: d.execute_script(JOB_STATES)[-1][1].startswith("failed"), "the refused upload")
    assert failed
    assert "Bearer" in page.execute_script(JOB_STATES)[-1][1]
    page.find_element(By.ID, "token-write").send_keys(WRITE_TOKEN)
    page.find_element(By.CSS_SELECTOR, "#token-form button[value=save]").click()
    page.find_element(By.XPATH, "//ol[@id='queue']/li[last()]//button[text()='Retry']").click()
    wait(page, lambda d: d.execute_script(JOB_STATES)[-1][1] == "stored", "the retried upload")
    assert "secure/fresh" in names(token_server, "secure/.*", token=READ_TOKEN)
    assert "401" in " ".join(console_errors(page))

    # The queue drained: the gallery lists its folder again, now with the upload in it.
    wait(page, lambda d: thumbs_loaded(d, ["secure/fresh", "secure/one"]), "the gallery refreshed")
    page.find_element(By.CSS_SELECTOR, "#grid a[title='secure/one']").click()
    wait(page, lambda d: d.execute_script(CANVAS_DRAWN), "deep-zoom tiles loaded with the token (loadTilesWithAjax)")
    storage = page.execute_script("return [sessionStorage.getItem('image_repo.read_token'), "
                                  "sessionStorage.getItem('image_repo.write_token'), document.cookie, localStorage.length]")
    assert storage == [READ_TOKEN, WRITE_TOKEN, "", 0]
    sent = sent_requests(page)
    ours = [r for r in sent if r["url"].startswith(token_server.url)]
    assert ours and not any(READ_TOKEN in r["url"] or WRITE_TOKEN in r["url"] for r in sent)
    assert not any("Cookie" in r["headers"] for r in sent)
    api = [r for r in ours if "/images" in r["url"] or "/iiif/" in r["url"]]
    bare = [(r["method"], r["url"]) for r in api if r["headers"].get("Authorization") not in (f"Bearer {READ_TOKEN}", f"Bearer {WRITE_TOKEN}")]
    assert api and bare == [("POST", f"{token_server.url}/images/secure/fresh.jpg")], bare  # only the refused try
    assert any("/iiif/3/" in r["url"] and not r["url"].endswith("info.json") for r in api)  # tiles, with the header


def test_large_files_go_through_the_direct_imports(small_upload_server, page, tmp_path):
    large = tmp_path / "scan.png"
    large.write_bytes(noise(360, 360))  # ~390 kB, over this server's max_upload_bytes of 200 kB
    browse(page, small_upload_server, "direct/.*")
    page.find_element(By.ID, "upload-toggle").click()
    assert page.find_element(By.ID, "upload-dir").get_attribute("value") == "direct/"  # the folder browsed
    sent_requests(page)
    page.find_element(By.ID, "file-input").send_keys(str(large))
    wait(page, lambda d: d.execute_script(JOB_STATES)[-1][1] == "stored", "the import to finish")
    assert names(small_upload_server, "direct/.*") == ["direct/scan"]
    meta = requests.get(f"{small_upload_server.url}/images/direct/scan", params={"meta": "true"}, timeout=30).json()
    assert meta["sha256"] == hashlib.sha256(large.read_bytes()).hexdigest() and meta["bytes"] == len(large.read_bytes())
    steps = [(r["method"], r["url"].split("?")[0].replace(small_upload_server.url, "")) for r in sent_requests(page)
             if "imports/" in r["url"] or r["url"].endswith("/imports")]
    import_id = steps[1][1].rsplit("/", 1)[-1]
    assert steps[:3] == [("POST", "/imports"), ("PUT", f"/_imports/{import_id}"), ("PUT", f"/imports/{import_id}")], steps
    assert not any(r["method"] == "POST" and "/images/" in r["url"] for r in sent_requests(page))


def test_a_dropped_file_and_a_chosen_folder_are_uploaded(open_server, page, tmp_path):
    browse(page, open_server, "dropped/.*")
    page.find_element(By.ID, "upload-toggle").click()
    page.execute_script(DROP, list(picture(120, 80, 50, "PNG")))
    wait(page, lambda d: d.execute_script(JOB_STATES) == [["dropped/dropped", "stored"]], "the dropped file stored")
    tree = tmp_path / "trip"
    (tree / "day 1").mkdir(parents=True)
    (tree / "day 1" / "beach.jpg").write_bytes(picture(200, 150, 51))
    (tree / "cliffs.JPEG").write_bytes(picture(200, 150, 52))
    (tree / "notes.txt").write_text("not an image: skipped")
    (tree / ".hidden.jpg").write_bytes(picture(20, 20, 53))
    page.find_element(By.ID, "folder-input").send_keys(str(tree))
    wait(page, lambda d: len(d.execute_script(JOB_STATES)) == 3 and d.execute_script(JOB_STATES)[-1][1] == "stored"
         and d.execute_script(JOB_STATES)[-2][1] == "stored", "the folder's images stored")
    assert names(open_server, "dropped/.*") == ["dropped/dropped", "dropped/trip/cliffs", "dropped/trip/day 1/beach"]
    assert "Skipped 2 files" in page.find_element(By.ID, "upload-hint").text


DROP = """
const file = new File([new Uint8Array(arguments[0])], 'dropped.png', {type: 'image/png'});
const data = new DataTransfer();
data.items.add(file);
const target = document.querySelector('main');
target.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
target.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
"""


def test_copy_a_temporary_url_download_and_delete_asking_first(open_server, page, downloads):
    name = "share/boat"
    put(open_server, name, picture(640, 400, 60))
    page.get(open_server.url + "/?image=" + quote(name))
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads button"), "the downloads")
    page.find_element(By.ID, "copy-url").click()
    field = wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#share input"), "the temporary URL")[0]
    url = field.get_attribute("value")
    assert url.startswith(open_server.url + "/_signed/") and "temp_url_sig=" in url
    assert "Valid until" in page.find_element(By.ID, "share").text
    signed = requests.get(url, timeout=30)
    assert signed.status_code == 200 and signed.headers["Content-Type"] == "image/jpeg"

    [png] = [b for b in page.find_elements(By.CSS_SELECTOR, "#downloads button") if b.text == "Full size PNG"]
    png.click()
    saved = wait(page, lambda d: [p for p in downloads.iterdir() if p.name == "boat.png"], "boat.png downloaded")[0]
    wait(page, lambda d: saved.stat().st_size > 0, "the download to finish")
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.find_element(By.ID, "delete").click()
    dialog = wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "#delete-dialog[open]"), "the question")
    assert name in dialog.text
    dialog.find_element(By.CSS_SELECTOR, "button[value=cancel]").click()
    assert names(open_server, "share/.*") == [name]  # kept
    page.find_element(By.ID, "delete").click()
    wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "#delete-dialog[open]"), "the question again")
    page.find_element(By.CSS_SELECTOR, "#delete-dialog button[value=delete]").click()
    wait(page, lambda d: d.find_element(By.ID, "gallery").is_displayed(), "the gallery after the delete")
    assert names(open_server, "share/.*") == []
    assert page.find_element(By.ID, "gallery-flash").text == f"Deleted {name}."


def test_phone_sized_window_with_visible_keyboard_focus(open_server, page):
    for i in range(5):
        put(open_server, f"phone/photo {i}", picture(800, 600, 70 + i))
    page.set_window_size(390, 844)
    try:
        browse(page, open_server, "phone/.*")
        wait(page, lambda d: thumbs_loaded(d, [f"phone/photo {i}" for i in range(5)]), "the thumbnails")
        assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        columns = page.execute_script(
            "return new Set(Array.from(document.querySelectorAll('#grid .tile')).map((t) => t.offsetLeft)).size")
        assert columns == 2
        first = page.find_element(By.CSS_SELECTOR, "#grid .tile > a")
        page.find_element(By.ID, "regex").send_keys(Keys.TAB, Keys.TAB)  # keyboard focus: the filter button, the first tile
        assert page.switch_to.active_element == first
        outline = page.execute_script("const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
        assert outline[0] != "none" and outline[1] != "0px"
        screenshot(page, "phone-gallery")
        first.send_keys(Keys.ENTER)
        wait(page, lambda d: d.find_element(By.ID, "viewer-title").text == "phone/photo 0", "the image page")
        wait(page, lambda d: d.execute_script("return document.getElementById('deep-zoom').dataset.opened === 'true' || "
                                              "document.getElementById('plain').naturalWidth > 0"), "the image shown")
        assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        side = page.find_element(By.CSS_SELECTOR, ".side").rect
        stage = page.find_element(By.CSS_SELECTOR, ".stage").rect
        assert side["y"] >= stage["y"] + stage["height"] - 1  # below the image, not squeezed beside it
        screenshot(page, "phone-viewer")
    finally:
        page.set_window_size(1280, 900)
