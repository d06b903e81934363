"""Settings: defaults < YAML < IMAGE_REPO_* env, type checks, secrets, the 2016 keys, the dump."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import yaml

from image_repo.config.dump import dump_yaml, settings_table_markdown
from image_repo.config.loading import load_settings, load_settings_from_environment
from image_repo.config.settings import Settings, iter_settings
from image_repo.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "config.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- defaults and documentation ---------------------------------------------------------

def test_defaults_without_file_or_environment():
    assert load_settings(environ={}) == Settings()


def test_every_setting_has_one_line_of_help():
    for key, f, _, _ in iter_settings():
        text = f.metadata.get("help", "")
        assert text.strip(), f"{key} has no help"
        assert "\n" not in text, f"{key}: help must be one line"


def test_config_default_yml_is_the_default_dump():
    assert (ROOT / "config" / "default.yml").read_text() == dump_yaml(load_settings(environ={})), (
        "config/default.yml is stale: regenerate it with `image_repo -Yt > config/default.yml` in a clean environment"
    )


def test_readme_table_is_generated_from_the_declarations():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- settings-table:start -->\n(.*?)<!-- settings-table:end -->", readme, re.DOTALL)
    assert m, "README.md lost its settings-table markers"
    assert m.group(1) == settings_table_markdown(), "README settings table is stale: regenerate it"


def test_example_config_loads_as_a_swift_deployment(tmp_path):
    password = tmp_path / "swift_password"
    password.write_text("pw-from-file\n")
    text = (ROOT / "config" / "example.yml").read_text().replace("/run/secrets/swift_password", str(password))
    env = {"URL_KEY": "uk", "WRITE_TOKEN": "wt"}
    s = load_settings(write(tmp_path, text), env)
    assert s.store == "swift://image-repo" and s.cache_store == "swift://image-repo-cache"
    assert s.swift.key == "pw-from-file" and s.url_key == "uk" and s.write_tokens == ["wt"]
    assert s.memory_cache.max_bytes == 256 * 2**20 and s.disk_cache.max_bytes == 10 * 2**30


# --- YAML and environment ---------------------------------------------------------------

def test_yaml_merges_over_defaults_section_by_section(tmp_path):
    s = load_settings(write(tmp_path, "workers: 3\ndisk_cache:\n  max_bytes: 10\nswift:\n"), {})
    assert s.workers == 3 and s.disk_cache.max_bytes == 10
    assert s.disk_cache.path == "" and s.threads == Settings().threads


def test_environment_overrides_file_with_nested_keys(tmp_path):
    path = write(tmp_path, "workers: 3\ndisk_cache:\n  max_bytes: 10\n")
    s = load_settings(path, {"IMAGE_REPO_DISK_CACHE__MAX_BYTES": "20", "IMAGE_REPO_SWIFT__USER": "bob",
                             "IMAGE_REPO_EXPOSE_GPS": "true", "IMAGE_REPO_SWIFT__TIMEOUT": "2.5"})
    assert s.disk_cache.max_bytes == 20 and s.workers == 3
    assert s.swift.user == "bob" and s.expose_gps is True and s.swift.timeout == 2.5


@pytest.mark.parametrize("text", ["[60, 70]", "60,70", " 60 , 70 "])
def test_environment_lists_as_yaml_or_commas(text):
    assert load_settings(environ={"IMAGE_REPO_THUMBNAIL_DEFAULT_SIZE": text}).thumbnail_default_size == [60, 70]


def test_environment_strings_are_verbatim_and_empty_optional_is_null():
    s = load_settings(environ={"IMAGE_REPO_SWIFT__AUTH_VERSION": "3", "IMAGE_REPO_SWIFT__REGION_NAME": "",
                               "IMAGE_REPO_CACHE_CONTROL": "no-store, private"})
    assert s.swift.auth_version == "3" and s.swift.region_name is None and s.cache_control == "no-store, private"


@pytest.mark.parametrize("given, expected", [("256MiB", 256 * 2**20), ("2GB", 2 * 10**9), ("1.5KiB", 1536),
                                             ("10G", 10 * 2**30), ("4096", 4096)])
def test_byte_sizes_take_units(tmp_path, given, expected):
    assert load_settings(write(tmp_path, f"memory_cache:\n  max_bytes: {given}\n"), {}).memory_cache.max_bytes == expected


def test_settings_from_environment_reads_image_repo_config(tmp_path):
    path = write(tmp_path, "workers: 5\n")
    assert load_settings_from_environment({"IMAGE_REPO_CONFIG": path}).workers == 5
    assert load_settings_from_environment({}) == Settings()


# --- errors: one line naming the key ------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("disk_cache:\n  max_bytes: lots\n",
     "config: disk_cache.max_bytes: expected an integer or a size such as 256MiB, got 'lots'"),
    ("foo:\n  bar: 1\n", "config: unknown setting 'foo'"),
    ("disk_cache:\n  max_byte: 1\n", "config: unknown setting 'disk_cache.max_byte' (did you mean 'disk_cache.max_bytes'?)"),
    ("swift:\n  nope: 1\n", "config: unknown setting 'swift.nope'"),
    ("workers: 1.5\n", "config: workers: expected an integer, got 1.5"),
    ("expose_gps: 'yes please'\n", "config: expose_gps: expected true or false, got 'yes please'"),
    ("thumbnail_default_size: [a, 2]\n", "config: thumbnail_default_size[0]: expected an integer, got 'a'"),
    ("swift: 3\n", "config: swift: expected a section (a mapping of settings), got 3"),
    ("workers: null\n", "config: workers: expected an integer, got null"),
    ("log_level: loud\n", "config: log_level: expected one of debug, info, warning, error, critical, got 'loud'"),
    ("default_kind: svg\n", "config: default_kind: expected one of jpg, png, tif, bmp, gif, webp, avif, jp2, got 'svg'"),
    ("threads: -1\n", "config: threads: expected a value of 0 or more, got -1"),
    ("- a list\n", "expected a mapping of settings"),
    ("workers: [\n", "invalid YAML"),
])
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text), {})
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("env, message", [
    ({"IMAGE_REPO_DISK_CACHE__MAX_BYTES": "lots"},
     "config: disk_cache.max_bytes (from IMAGE_REPO_DISK_CACHE__MAX_BYTES): expected an integer or a size"),
    ({"IMAGE_REPO_FOO": "1"}, "config: unknown setting 'foo' (from IMAGE_REPO_FOO)"),
    ({"IMAGE_REPO_SWIFT__NOPE": "1"}, "config: unknown setting 'swift.nope' (from IMAGE_REPO_SWIFT__NOPE)"),
    ({"IMAGE_REPO_SWIFT": "1"}, "is a section"),
])
def test_bad_environment_names_the_key_and_variable(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ=env)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "absent.yml"), {})


def test_kind_spellings_are_normalised(tmp_path):
    assert load_settings(write(tmp_path, "default_kind: JPEG\n"), {}).default_kind == "jpg"


# --- secrets ------------------------------------------------------------------------------

def test_env_and_file_references(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("file-token\n")
    path = write(tmp_path, 'url_key: {"$env": MY_KEY}\n'
                           'write_tokens: [{"$file": secrets/token}, {"$env": MY_KEY}, literal]\n'
                           'swift:\n  key: {"$file": secrets/token}\n'
                           'workers: {"$env": NWORKERS}\n')
    s = load_settings(path, {"MY_KEY": "env-key", "NWORKERS": "7"})
    assert s.url_key == "env-key" and s.swift.key == "file-token" and s.workers == 7
    assert s.write_tokens == ["file-token", "env-key", "literal"]


def test_missing_env_reference_names_key_and_variable(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("config: url_key: environment variable NOPE is not set")):
        load_settings(write(tmp_path, 'url_key: {"$env": NOPE}\n'), {})


def test_missing_file_reference_names_key(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("config: swift.key: cannot read nope.txt")):
        load_settings(write(tmp_path, 'swift:\n  key: {"$file": nope.txt}\n'), {})


def test_malformed_reference(tmp_path):
    with pytest.raises(ConfigError, match="a reference is"):
        load_settings(write(tmp_path, 'url_key: {"$environ": X}\n'), {})


def test_wrong_type_of_secret_does_not_show_it(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, "write_tokens: [[hunter2]]\n"), {})
    assert "hunter2" not in str(e.value)


SECRETS = {"url_key": "SEKRIT-url", "swift.key": "SEKRIT-pw", "write_tokens": ["SEKRIT-tok"]}


def test_secrets_never_in_dump_or_repr(tmp_path):
    path = write(tmp_path, "url_key: SEKRIT-url\nwrite_tokens: [SEKRIT-tok]\nswift:\n  key: SEKRIT-pw\n"
                           "  token: SEKRIT-token\ns3:\n  secret_access_key: SEKRIT-s3\n")
    s = load_settings(path, {"OS_APPLICATION_CREDENTIAL_SECRET": "SEKRIT-app"})
    text = dump_yaml(s)
    assert "SEKRIT" not in text and "SEKRIT" not in repr(s)
    assert re.search(r"^url_key: null +# \(set, hidden\)", text, re.MULTILINE)
    assert re.search(r"^write_tokens: null +# \(set, hidden\)", text, re.MULTILINE)
    assert '  application_credential_secret: {"$env": "OS_APPLICATION_CREDENTIAL_SECRET"}' in text


def test_default_dump_round_trips(tmp_path):
    first = dump_yaml(load_settings(environ={}))
    assert dump_yaml(load_settings(write(tmp_path, first), {})) == first


def test_dump_round_trips_references_and_environment(tmp_path):
    (tmp_path / "pw").write_text("file-pw")
    env = {"MY_KEY": "k", "IMAGE_REPO_SWIFT__TOKEN": "t", "OS_AUTH_URL": "https://keystone/v3", "OS_PASSWORD": "p",
           "IMAGE_REPO_WORKERS": "3"}
    path = write(tmp_path, 'store: swift://originals\nurl_key: {"$env": MY_KEY}\nwrite_tokens: [{"$env": MY_KEY}]\n'
                           'swift:\n  key: {"$file": pw}\n  retries: 5\nmemory_cache:\n  max_bytes: 1MiB\n')
    first_settings = load_settings(path, env)
    first = dump_yaml(first_settings)
    assert '{"$env": "MY_KEY"}' in first and '{"$file": "pw"}' in first and '{"$env": "IMAGE_REPO_SWIFT__TOKEN"}' in first
    for secret in ("file-pw", '"k"', '"t"', '"p"'):
        assert secret not in first
    second_settings = load_settings(write(tmp_path, first, "dumped.yml"), env)
    assert second_settings == first_settings
    assert dump_yaml(second_settings) == first


def test_dump_is_commented_and_nested():
    text = dump_yaml()
    assert re.search(r"^disk_cache:  # The local disk cache", text, re.MULTILINE)
    assert re.search(r"^  max_bytes: 2147483648 +# Bytes of derived images kept on local disk .*\(default: 2147483648\)$",
                     text, re.MULTILINE)
    keys = {k for k, *_ in iter_settings()}
    loaded = yaml.safe_load(text)
    flat = {f"{a}.{b}" if isinstance(v, dict) else a for a, v in loaded.items() for b in (v if isinstance(v, dict) else [None])}
    assert flat == keys


# --- credentials from the environment -----------------------------------------------------

def test_keystone_variables_fill_unset_swift_settings(tmp_path):
    env = {"OS_AUTH_URL": "https://ks/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "proj",
           "OS_PROJECT_ID": "pid", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_REGION_NAME": "r", "OS_IDENTITY_API_VERSION": "3", "OS_STORAGE_URL": "https://s/v1/AUTH_x",
           "OS_AUTH_TOKEN": "tok", "OS_APPLICATION_CREDENTIAL_ID": "aid", "OS_APPLICATION_CREDENTIAL_SECRET": "as"}
    s = load_settings(write(tmp_path, "swift:\n  user: configured\n"), env)
    sw = s.swift
    assert (sw.auth_url, sw.user, sw.key, sw.tenant_name, sw.tenant_id) == ("https://ks/v3", "configured", "p", "proj", "pid")
    assert (sw.user_domain_name, sw.project_domain_name, sw.region_name, sw.auth_version) == ("Default", "Default", "r", "3")
    assert (sw.storage_url, sw.token, sw.application_credential_id, sw.application_credential_secret) == (
        "https://s/v1/AUTH_x", "tok", "aid", "as")
    assert s.references["swift.key"] == {"$env": "OS_PASSWORD"}


def test_tenant_variables_of_keystone_v2():
    s = load_settings(environ={"OS_TENANT_NAME": "t", "OS_TENANT_ID": "tid", "OS_PROJECT_NAME": "p"})
    assert (s.swift.tenant_name, s.swift.tenant_id) == ("t", "tid")


def test_v1_variables_win_when_st_auth_is_set():
    s = load_settings(environ={"ST_AUTH": "https://s/auth/v1.0", "ST_USER": "a:u", "ST_KEY": "k",
                               "OS_AUTH_URL": "https://ks", "OS_PASSWORD": "p"})
    assert (s.swift.auth_url, s.swift.user, s.swift.key, s.swift.auth_version) == ("https://s/auth/v1.0", "a:u", "k", "1")


def test_aws_variables_fill_s3_settings():
    s = load_settings(environ={"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_DEFAULT_REGION": "eu",
                               "AWS_ENDPOINT_URL": "http://minio:9000", "AWS_SESSION_TOKEN": "st"})
    assert (s.s3.access_key_id, s.s3.secret_access_key, s.s3.region, s.s3.endpoint_url, s.s3.session_token) == (
        "id", "sk", "eu", "http://minio:9000", "st")


def test_empty_credential_variables_are_unset():
    assert load_settings(environ={"OS_PASSWORD": ""}).swift.key is None


# --- the 2016 configuration -----------------------------------------------------------------

_SWIFT_2016 = """\
    alarm_free_threshold: 0.1                                   #  
    container: '{container}'                                    #  
    credentials:                                                #  
        authurl: ('env', 'OS_AUTH_URL')                         #  
        password: ('env', 'OS_PASSWORD')                        #  
        tenant: ('env', 'OS_TENANT_NAME')                       #  
        tenant_id: ('env', 'OS_TENANT_ID')                      #  
        username: ('env', 'OS_USERNAME')                        #  
    download_path: None                                         #  
    eager_writeback: 'never'                                    #  
    evict_free_threshold: 0.2                                   #  
    evict_hysterysis: 0.2                                       #  
    initialise_store: False                                     #  
    max_elements: 0                                             #  
    max_size: 0                                                 #  
    next_level: None                                            #  
    priority: 'newest'                                          #  
    server_url: 'https://swift.rc.nectar.org.au:8888'           #  
    url_key: '123456789'                                        #  
    url_lifetime: 172800                                        #  
    url_lifetime_slack: 86400                                   #  
    url_method: 'GET'                                           #  
    use_file_cache: True                                        #  
"""
_CACHE_2016 = """\
    alarm_free_threshold: 0.1                                   #  
{extra}    eager_writeback: 'never'                                    #  
    evict_free_threshold: 0.2                                   #  
    evict_hysterysis: 0.2                                       #  
{extra2}    max_elements: 1048576                                       #  
    max_size: 1073741824                                        #  
    next_level: None                                            #  
    priority: 'newest'                                          #  
"""
# The 2016 server's default `image_repo -Yt` output (reference section 6.3), as it printed it.
DUMP_2016 = (
    "alarm_threshold: 0.8                                            #  Fraction of space used that raises an alarm\n"
    "cannonical_format: 'miff'                                       #  \n"
    "cannonical_format_used: False                                   #  \n"
    "create_new: False                                               #  \n"
    "image_default_format: 'jpg'                                     #  \n"
    "local_cache_configuration:                                      #  Local file cache\n"
    + _CACHE_2016.format(extra="    cache_path: '/var/tmp/image_server'                         #  \n",
                         extra2="    initialise: False                                           #  \n")
    + "local_file_cache_path: '/var/tmp/image_repo'                    #  \n"
    "max_images: 0                                                   #  \n"
    "max_size: 0                                                     #  \n"
    "memory_cache_configuration:                                     #  \n"
    + _CACHE_2016.format(extra="", extra2="")
    + "owner: None                                                     #  \n"
    "persistent_store_configuration:                                 #  \n"
    + _SWIFT_2016.format(container="test_image_repo")
    + "pid_file: '/var/tmp/image_repo_pid'                             #  \n"
    "repository_base_pathname: 'images'                              #  \n"
    "swift_cache_configuration:                                      #  \n"
    + _SWIFT_2016.format(container="test_image_repo")
    + "thumbnail_default_format: 'jpg'                                 #  \n"
    "thumbnail_default_size: [50, 50]                                #  \n"
    "thumbnail_equalise: True                                        #  \n"
    "thumbnail_liquid_cutin_ratio: 5.0                               #  \n"
    "thumbnail_liquid_resize: True                                   #  \n"
    "thumbnail_sharpen: True                                         #  \n"
)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "image_repo.settings" and r.levelno == logging.WARNING]


def test_2016_default_dump_loads(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "image_repo.settings")
    env = {"OS_AUTH_URL": "https://keystone.rc.nectar.org.au:5000/v2.0/", "OS_USERNAME": "u", "OS_PASSWORD": "p",
           "OS_TENANT_NAME": "t", "OS_TENANT_ID": "tid"}
    s = load_settings(write(tmp_path, DUMP_2016), env)
    assert s.store == "swift://test_image_repo" and s.cache_store == "swift://test_image_repo"
    assert s.disk_cache.path == "/var/tmp/image_server"
    # The 2016 default sizes were never chosen by anyone: today's defaults stay.
    assert s.memory_cache.max_bytes == Settings().memory_cache.max_bytes
    assert s.disk_cache.max_bytes == Settings().disk_cache.max_bytes
    assert s.url_key == "123456789" and s.url_lifetime == 172800
    assert s.repository_base_pathname == "images" and s.thumbnail_default_size == [50, 50] and s.default_kind == "jpg"
    assert (s.swift.auth_url, s.swift.user, s.swift.key, s.swift.tenant_name, s.swift.tenant_id) == (
        env["OS_AUTH_URL"], "u", "p", "t", "tid")
    ignored = [w for w in _warnings(caplog) if "ignoring 2016 settings" in w]
    assert len(ignored) == 1
    for key in ("alarm_threshold", "cannonical_format", "pid_file", "owner", "thumbnail_sharpen",
                "local_cache_configuration.initialise", "persistent_store_configuration.initialise_store",
                "swift_cache_configuration.server_url", "swift_cache_configuration.url_lifetime_slack",
                "memory_cache_configuration.max_elements"):
        assert key in ignored[0]
    assert any("url_key is the 2016 default" in w for w in _warnings(caplog))
    assert "123456789" not in " ".join(_warnings(caplog))


def test_2016_sections_map_to_current_settings(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "image_repo.settings")
    (tmp_path / "pw").write_text("file-pw\n")
    text = """
persistent_store_configuration:
    container: 'originals'
    url_key: 'persistent-key'
    initialise_store: True
    credentials:
        username: ('explicit', 'alice')
        password: ('file', 'pw')
        tenant: ('env', 'MY_TENANT')
        tenant_id: None
swift_cache_configuration:
    container: 'derived'
    url_key: 'cache-key'
    url_lifetime: 3600
local_cache_configuration:
    cache_path: '/srv/cache'
    max_size: 5000
memory_cache_configuration:
    max_size: 1000
thumbnail_default_format: 'png'
"""
    s = load_settings(write(tmp_path, text), {"MY_TENANT": "team"})
    assert (s.store, s.cache_store) == ("swift://originals", "swift://derived")
    assert s.url_key == "cache-key" and s.url_lifetime == 3600  # the cache section signed 2016's URLs
    assert (s.swift.user, s.swift.key, s.swift.tenant_name, s.swift.tenant_id) == ("alice", "file-pw", "team", None)
    assert (s.disk_cache.path, s.disk_cache.max_bytes, s.memory_cache.max_bytes) == ("/srv/cache", 5000, 1000)
    assert s.default_kind == "png"
    [warning] = [w for w in _warnings(caplog) if "2016" in w]
    assert "persistent_store_configuration.url_key" in warning  # overridden by the cache section's
    assert "never does" in warning  # initialise_store: nothing is deleted
    assert "persistent-key" not in warning and "cache-key" not in warning


def test_current_keys_win_over_2016_keys(tmp_path):
    text = "store: s3://bucket\npersistent_store_configuration:\n    container: 'old'\n"
    assert load_settings(write(tmp_path, text), {}).store == "s3://bucket"


def test_2016_type_errors_name_the_2016_key(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("disk_cache.max_bytes (from local_cache_configuration.max_size)")):
        load_settings(write(tmp_path, "local_cache_configuration:\n    max_size: 'big'\n"), {})


def test_unknown_2016_section_key(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("unknown setting 'local_cache_configuration.colour'")):
        load_settings(write(tmp_path, "local_cache_configuration:\n    colour: 'red'\n"), {})


def test_s3_credentials_file_comes_before_aws_variables(tmp_path):
    from image_repo.config.loading import load_settings

    cfg = tmp_path / "c.yml"
    cfg.write_text("s3:\n  credentials_file: /somewhere/creds.csv\n")
    s = load_settings(str(cfg), {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret"})
    assert s.s3.access_key_id is None and s.s3.secret_access_key is None
    s = load_settings(None, {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret"})
    assert s.s3.access_key_id == "envkey"
