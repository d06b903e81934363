"""The service when its originals store fails: cached derivatives still served, the rest 503."""
from __future__ import annotations

import pytest

from image_repo.config.settings import Settings
from image_repo.errors import NotFound, StorageUnavailable
from image_repo.imaging.spec import DerivationSpec
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg


class Switchable(MemoryStore):
    """A real memory store that can be made unreachable (a fault a real store cannot show on demand)."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("store down (test)")

    def stat(self, key):  # type: ignore[override]
        self._check()
        return super().stat(key)

    def get_with_info(self, key):  # type: ignore[override]
        self._check()
        return super().get_with_info(key)

    def get(self, key):  # type: ignore[override]
        self._check()
        return super().get(key)

    def list(self, prefix="", marker=""):  # type: ignore[override]
        self._check()
        return super().list(prefix, marker)


@pytest.fixture
def setup(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    store = Switchable()
    app = create_app(settings, store=store, cache_store=MemoryStore())
    return app.test_client(), store, app


def test_cached_derivatives_survive_a_store_outage(setup):
    client, store, _ = setup
    client.put("/images/p", data=make_jpeg(200, 100))
    client.put("/images/q", data=make_jpeg(200, 100))
    assert client.get("/images/p?xsize=50").status_code == 200
    store.down = True
    assert client.get("/images/p?xsize=50").status_code == 200
    r = client.get("/images/p?xsize=60")
    assert r.status_code == 503 and r.headers["Retry-After"] and r.get_json()["message"]
    r = client.get("/images/never-seen")
    assert r.status_code == 503
    store.down = False
    assert client.get("/images/p?xsize=60").status_code == 200
    assert client.get("/images/q").status_code == 200


def test_readyz_says_which_store_is_down(setup):
    client, store, _ = setup
    store.down = True
    r = client.get("/readyz")
    assert r.status_code == 503 and "store" in r.get_json()["message"]


def test_derivation_counter(setup):
    client, _, app = setup
    client.put("/images/p", data=make_jpeg(64, 64))
    svc = app.extensions["image_repo"]
    original = svc.get_original("p")
    spec = DerivationSpec(width=10)
    assert not svc.render(original, spec).cached
    assert svc.render(original, spec).cached
    assert svc.counters()["derivations"] == 1


def test_an_original_replaced_between_stat_and_get_is_never_derived_under_the_old_version(setup):
    """Another server replaces p after this worker looked it up: the bytes read are the new ones,
    so deriving them under the old version's key would serve them for the old ETag. A 503 to
    retry instead, and nothing cached; the retry derives the new original under its own key."""
    from image_repo import names

    client, store, app = setup
    client.put("/images/p", data=make_jpeg(200, 100))
    svc = app.extensions["image_repo"]
    stale = svc.get_original("p")
    new = make_jpeg(300, 100)  # another size: the check once compared hashes only of same-size bytes
    store.put("p.jpg", new, "image/jpeg", {"sha256": __import__("hashlib").sha256(new).hexdigest()})  # not via svc
    spec = DerivationSpec(width=50)
    with pytest.raises(StorageUnavailable, match="changed while it was read"):
        svc.render(stale, spec)
    with pytest.raises(NotFound):
        svc.cache.get(names.derived_key("p", stale.version, spec))
    fresh = svc.get_original("p")
    assert fresh.version != stale.version
    assert svc.render(fresh, spec).data
