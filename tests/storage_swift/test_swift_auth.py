"""swift_auth_options and from_url: pure plumbing, no Swift needed (Keystone cannot run here)."""
from __future__ import annotations

import pytest
from swiftclient.client import Connection

from image_repo.config.settings import Settings, SwiftSettings
from image_repo.errors import ConfigError
from image_repo.storage.swift import SwiftStore, swift_auth_options

V2_ENV = {"OS_AUTH_URL": "https://keystone.example/v2.0", "OS_USERNAME": "alice", "OS_PASSWORD": "pw-v2",
          "OS_TENANT_NAME": "images", "OS_TENANT_ID": "0123abcd"}
V3_ENV = {"OS_AUTH_URL": "https://keystone.example/v3", "OS_USERNAME": "alice", "OS_PASSWORD": "pw-v3",
          "OS_PROJECT_NAME": "images", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
          "OS_REGION_NAME": "RegionTwo"}


def test_v1_from_settings():
    s = SwiftSettings(auth_url="http://127.0.0.1:8080/auth/v1.0", user="test:tester", key="testing")
    assert swift_auth_options(s) == {"authurl": "http://127.0.0.1:8080/auth/v1.0", "auth_version": "1",
                                     "user": "test:tester", "key": "testing"}


def test_v1_from_st_variables_ignores_os_ones():
    env = {"ST_AUTH": "http://swift/auth/v1.0", "ST_USER": "a:b", "ST_KEY": "k", **V2_ENV}
    assert swift_auth_options(SwiftSettings(), env) == {
        "authurl": "http://swift/auth/v1.0", "auth_version": "1", "user": "a:b", "key": "k"}


def test_keystone_v2_as_the_2016_server_used_it():
    assert swift_auth_options(SwiftSettings(), V2_ENV) == {
        "authurl": "https://keystone.example/v2.0", "auth_version": "2.0", "user": "alice", "key": "pw-v2",
        "os_options": {"tenant_name": "images", "tenant_id": "0123abcd"}}


def test_keystone_v3_password():
    assert swift_auth_options(SwiftSettings(), V3_ENV) == {
        "authurl": "https://keystone.example/v3", "auth_version": "3", "user": "alice", "key": "pw-v3",
        "os_options": {"project_name": "images", "user_domain_name": "Default",
                       "project_domain_name": "Default", "region_name": "RegionTwo"}}


def test_keystone_v3_project_id_and_explicit_version():
    env = {"OS_AUTH_URL": "https://keystone.example/", "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": "u",
           "OS_PASSWORD": "p", "OS_PROJECT_ID": "p-id"}
    opts = swift_auth_options(SwiftSettings(), env)
    assert opts["auth_version"] == "3" and opts["os_options"] == {"project_id": "p-id"}


def test_application_credential():
    env = {"OS_AUTH_URL": "https://keystone.example/v3", "OS_APPLICATION_CREDENTIAL_ID": "ac-id",
           "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret"}
    assert swift_auth_options(SwiftSettings(), env) == {
        "authurl": "https://keystone.example/v3", "auth_version": "3",
        "os_options": {"auth_type": "v3applicationcredential", "application_credential_id": "ac-id",
                       "application_credential_secret": "ac-secret"}}


def test_preauthenticated_only():
    s = SwiftSettings(storage_url="https://swift.example/v1/AUTH_x", token="tok")
    assert swift_auth_options(s) == {"preauthurl": "https://swift.example/v1/AUTH_x", "preauthtoken": "tok"}


def test_preauthenticated_with_credentials_to_reauthenticate():
    env = {"OS_STORAGE_URL": "https://swift.example/v1/AUTH_x", "OS_AUTH_TOKEN": "tok", **V2_ENV}
    opts = swift_auth_options(SwiftSettings(), env)
    assert opts["preauthurl"] == "https://swift.example/v1/AUTH_x" and opts["preauthtoken"] == "tok"
    assert opts["authurl"] == V2_ENV["OS_AUTH_URL"] and opts["key"] == "pw-v2"


def test_settings_win_over_environment():
    s = SwiftSettings(user="bob", key="from-settings", tenant_name="other", auth_version="2")
    opts = swift_auth_options(s, V2_ENV)
    assert (opts["user"], opts["key"], opts["auth_version"]) == ("bob", "from-settings", "2.0")
    assert opts["os_options"]["tenant_name"] == "other"


def test_environment_ignored_unless_given():
    with pytest.raises(ConfigError, match="no credentials"):
        swift_auth_options(SwiftSettings())


def test_missing_password_names_the_setting_not_a_value():
    env = {k: v for k, v in V2_ENV.items() if k != "OS_PASSWORD"}
    with pytest.raises(ConfigError, match=r"swift\.key") as e:
        swift_auth_options(SwiftSettings(), env)
    assert "alice" not in str(e.value)


@pytest.mark.parametrize("env", [V2_ENV, V3_ENV, {"ST_AUTH": "http://s/auth/v1.0", "ST_USER": "a", "ST_KEY": "k"}])
def test_options_are_what_swiftclient_accepts(env):
    conn = Connection(**swift_auth_options(SwiftSettings(), env))  # no request is made until used
    assert conn.authurl == (env.get("OS_AUTH_URL") or env["ST_AUTH"])


def test_from_url_container_prefix_and_no_secret_in_repr():
    s = Settings()
    s.swift.auth_url, s.swift.user, s.swift.key = "http://h/auth/v1.0", "u", "sekrit-key"
    s.url_key = "sekrit-url-key"
    store = SwiftStore.from_url("swift://my%20images/site/one/", s)
    assert (store.container, store.prefix, store.url) == ("my images", "site/one/", "swift://my images/site/one")
    assert "sekrit" not in repr(store) and "sekrit" not in str(vars(store).get("url"))
    plain = SwiftStore.from_url("swift://c", s)
    assert (plain.container, plain.prefix, plain.url) == ("c", "", "swift://c")


def test_from_url_takes_retries_timeout_and_environ():
    s = Settings()
    s.swift.retries, s.swift.timeout = 7, 2.5
    store = SwiftStore.from_url("swift://c", s, environ={"ST_AUTH": "http://h/auth/v1.0", "ST_USER": "u",
                                                           "ST_KEY": "k"})
    conn = store._conn()
    assert (conn.retries, conn.timeout, conn.authurl) == (7, 2.5, "http://h/auth/v1.0")


@pytest.mark.parametrize("url", ["swift://", "swift:///prefix", "s3://bucket"])
def test_from_url_refuses_bad_urls(url):
    s = Settings()
    s.swift.storage_url, s.swift.token = "http://h/v1/AUTH_x", "t"
    with pytest.raises(ConfigError):
        SwiftStore.from_url(url, s)
