"""GET /images?limit=&marker=: pages that join up to the whole listing, on every store."""
from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from image_repo.config.settings import Settings
from image_repo.storage.base import ObjectInfo
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app

# Keys as an upload (or another tool) leaves them. The names where key order is not name
# order: 'scan' sorts before 'scan 2' and 'scan-01', but 'scan.jpg' after their keys.
KEYS = [
    "scan.jpg", "scan-01.jpg", "scan 2.png", "scan/inner.jpg", "scan.1.tif", "scan-01/deep/x.jpg",
    "a.jpg", "a b.jpg", "a-b.gif", "a/b.jpg", "a0.webp", "b.jpg",
    "ünïcödé/日本語 写真.png", "émoji 😀.gif", "100% pure+(1).jpg",
    "dup.jpg", "dup.png",  # one name stored in two kinds: listed once
    "plain+original(None).jpg",  # the 2016 layout
    "notes.txt", ".imports/0123.json", "scan/.d/ab.thumb.jpg",  # never names
]


def names_of(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def walk(client, query: str) -> tuple[list[str], list[int]]:
    """Follow rel=next links from ``/images?<query>``: every name, and each page's length."""
    url, everything, sizes = f"/images?{query}", [], []
    while url:
        response = client.get(url)
        page = names_of(response)
        everything += page
        sizes.append(len(page))
        link = response.headers.get("Link")
        if link is None:
            break
        assert link.startswith("</images?") and link.endswith('>; rel="next"'), link
        url = link[1:link.index(">")]
        assert len(sizes) < 100, "pages never end"
    return everything, sizes


@pytest.fixture
def filled(settings: Settings):
    app = create_app(settings)
    store = app.extensions["image_repo"].originals.store
    for key in KEYS:
        store.put(key, b"x")
    yield app.test_client()
    app.extensions["image_repo"].cache.close()


def test_pages_join_up_to_the_whole_listing_in_its_order(filled):
    whole = names_of(filled.get("/images"))
    assert "scan" in whole and "dup" in whole and "plain" in whole and "notes" not in whole
    assert whole == sorted(whole) and len(whole) == len(set(whole))
    for limit in (1, 2, 3, 7, 100):
        joined, sizes = walk(filled, f"limit={limit}")
        assert joined == whole, limit
        assert all(n == limit for n in sizes[:-1]) and 1 <= sizes[-1] <= limit, (limit, sizes)


def test_pages_with_a_regex_and_from_any_marker(filled):
    whole = names_of(filled.get("/images?regex=scan.*"))
    assert whole == ["scan", "scan 2", "scan-01", "scan-01/deep/x", "scan.1", "scan/inner"]
    assert walk(filled, "regex=scan.*&limit=2")[0] == whole
    everything = names_of(filled.get("/images"))
    for marker in ["", "a", "sc", "scan", "scan 2", "scan-", "scan-01", "zzz", "ünï"]:
        page = names_of(filled.get("/images", query_string={"limit": 3, "marker": marker}))
        assert page == [n for n in everything if n > marker][:3], marker


def test_a_marker_alone_gives_the_rest_and_no_link(filled):
    response = filled.get("/images?marker=scan")
    assert names_of(response) == [n for n in names_of(filled.get("/images")) if n > "scan"]
    assert "Link" not in response.headers


def test_the_next_link_keeps_the_query(filled):
    response = filled.get("/images?regex=scan.*&limit=2")
    link = response.headers["Link"]
    query = parse_qs(urlsplit(link[1:link.index(">")]).query)
    assert query == {"regex": ["scan.*"], "limit": ["2"], "marker": ["scan 2"]}


@pytest.mark.parametrize("settings", ["file"], indirect=True)
@pytest.mark.parametrize("query", ["limit=0", "limit=10001", "limit=x", "limit=-1", "limit=1.5", "limit=٣",
                                   "limit=" + "9" * 5000, "limit="])
def test_bad_limit_is_400(filled, query):
    response = filled.get(f"/images?{query}")
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("limit:")


class CountingStore(MemoryStore):
    """A memory store that counts the entries its listings hand out."""

    listed = 0

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        for info in super().list(prefix, marker):
            self.listed += 1
            yield info


def test_a_page_reads_about_a_page_of_the_listing(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    store = CountingStore()
    for i in range(3000):
        store.put(f"many/n{i:05d}.jpg", b"x")
    client = create_app(settings, store=store, cache_store=MemoryStore()).test_client()
    page = names_of(client.get("/images?limit=50&marker=many/n01999"))
    assert page == [f"many/n{i:05d}" for i in range(2000, 2050)]
    # The marker's own key (it sorts after the name), the page, the name saying more follow, the key past it.
    assert store.listed <= 53


@given(
    names=st.sets(st.text(alphabet=" -.+!/ab~é", min_size=1, max_size=6), max_size=25),
    kinds=st.lists(st.sampled_from(["jpg", "png", "tif"]), min_size=1, max_size=2),
    limit=st.integers(1, 5),
)
@settings_(max_examples=300, deadline=None)
def test_pages_always_join_up(names, kinds, limit):
    """Whatever the names (prefixes of each other, punctuation around '.'), the pages are the listing."""
    from image_repo import names as names_mod
    from image_repo.errors import InvalidRequest
    from image_repo.service.originals import Originals

    store = MemoryStore()
    for name in names:
        try:
            names_mod.validate_name(name)
        except InvalidRequest:
            continue
        for kind in kinds:
            store.put(f"{name}.{kind}", b"x")
    originals = Originals(Settings(), store)
    whole, joined, marker = originals.list_names(), [], ""
    while True:
        page, more = originals.list_page(None, marker, limit)
        joined += page
        if not more:
            break
        assert len(page) == limit
        marker = page[-1]
    assert joined == whole


@pytest.mark.parametrize("pattern, prefix", [
    ("site1/.*", "site1/"), (r"site\.1/.*", "site.1/"), (r"a\(b\)/.*", "a(b)/"), ("ab*", "a"), ("ab?c", "a"),
    ("abc{2}", "ab"), ("a+b", "a"), (r"a\d", "a"), (r"a\.*", "a"), ("(?i)abc", ""), ("a|b", ""), ("*a", ""),
    ("été/.*", "été/"), (r"x\Qy\E", "x"),
])
def test_literal_prefix(pattern, prefix):
    """The listing prefix a regex implies: every full match starts with it (escaped punctuation included)."""
    from image_repo.service.originals import literal_prefix

    assert literal_prefix(pattern) == prefix
