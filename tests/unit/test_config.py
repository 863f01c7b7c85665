"""Config loading: YAML shape, env overrides, secrets from files, every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from zot_artifact_store.config import ConfigError, env_name, load_config, parse_duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    config = load_config(None, environ={})
    assert (config.http.address, config.http.port) == ("127.0.0.1", 8080)
    assert config.storage.rootDirectory == "./data"
    assert config.metadata_uri.startswith("sqlite:///") and config.metadata_uri.endswith(
        "/data/metadata.db"
    )
    assert not config.auth.enabled


def test_zot_shaped_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
distSpecVersion: 1.1.0
http: {address: 0.0.0.0, port: 5000}
storage: {rootDirectory: /var/lib/zas, gc: true, gcDelay: 1h30m}
metadata: {uri: "mongodb://db:27017/zas"}
log: {level: DEBUG, format: text}
extensions:
  search: {enable: true}
  metrics: {enable: true, protected: true}
""",
    )
    config = load_config(path, environ={})
    assert config.http.port == 5000
    assert config.storage.gcDelay == 5400
    assert config.metadata_uri == "mongodb://db:27017/zas"
    assert config.log.level == "debug"
    assert config.extensions.metrics.protected is True


def test_env_names_follow_paths() -> None:
    assert env_name("metadata.uri") == "ZAS_METADATA_URI"
    assert env_name("http.port") == "ZAS_HTTP_PORT"
    assert env_name("storage.rootDirectory") == "ZAS_STORAGE_ROOTDIRECTORY"


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "http: {port: 5000}\nstorage: {rootDirectory: /a}\n")
    config = load_config(
        path,
        environ={
            "ZAS_HTTP_PORT": "6000",
            "ZAS_STORAGE_ROOTDIRECTORY": "/b",
            "ZAS_STORAGE_GC": "false",
        },
    )
    assert config.http.port == 6000
    assert config.storage.rootDirectory == "/b"
    assert config.storage.gc is False


def test_command_line_beats_env() -> None:
    config = load_config(None, environ={"ZAS_HTTP_PORT": "6000"}, overrides={"http.port": 7000})
    assert config.http.port == 7000


def test_defaults_lose_to_the_file_the_env_and_the_command_line(tmp_path: Path) -> None:
    # The container image's defaults (cli.CONTAINER_DEFAULTS) replace only the built-in ones.
    defaults = {"http.address": "0.0.0.0", "storage.rootDirectory": "/var/lib/zas"}
    config = load_config(None, environ={}, defaults=defaults)
    assert (config.http.address, config.storage.rootDirectory) == ("0.0.0.0", "/var/lib/zas")
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  address: 10.0.0.1\n  port: 9000\n")
    config = load_config(path, environ={"ZAS_STORAGE_ROOTDIRECTORY": "/env"}, defaults=defaults)
    assert (config.http.address, config.http.port) == ("10.0.0.1", 9000)
    assert config.storage.rootDirectory == "/env"
    config = load_config(path, environ={}, overrides={"http.address": "::"}, defaults=defaults)
    assert (config.http.address, config.storage.rootDirectory) == ("::", "/var/lib/zas")


def test_root_credentials_and_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-long-enough\n")
    config = load_config(
        None, environ={"ZAS_ROOT_USER": "admin", "ZAS_ROOT_PASSWORD_FILE": str(secret)}
    )
    assert config.auth.enabled
    assert config.auth.root.password == "hunter2-long-enough"
    path = write(tmp_path, f"auth: {{root: {{user: admin, passwordFile: {secret}}}}}\n")
    assert load_config(path, environ={}).auth.root.password == "hunter2-long-enough"
    assert "hunter2" not in repr(load_config(path, environ={}))


def test_every_problem_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
http: {port: -1, tls: {cert: /missing.pem}}
storage: {gcDelay: soon, rootDirectory: /x, colour: red}
metadata: {uri: "postgres://x"}
log: {format: xml}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"ZAS_ROOT_USER": "admin", "ZAS_NOT_A_FIELD": "1"})
    text = str(err.value)
    for expected in (
        "http.port: value -1 is not allowed",
        "http.tls",
        "storage.gcDelay: value 'soon' is not allowed",
        "storage.colour: unknown field; check spelling",
        "metadata.uri: value 'postgres://x' is not allowed: must start with sqlite:///",
        "log.format: value 'xml' is not allowed",
        "auth.root: set both",
        "ZAS_NOT_A_FIELD: unknown setting",
    ):
        assert expected in text, (expected, text)


def test_env_value_problem_names_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"ZAS_HTTP_PORT": "eighty"})
    assert "http.port: value 'eighty' (from ZAS_HTTP_PORT) is not allowed" in str(err.value)


def test_short_password_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"ZAS_ROOT_USER": "admin", "ZAS_ROOT_PASSWORD": "short"})
    assert "at least 8 characters" in str(err.value)
    assert "short" not in str(err.value).replace("at least", "")


@pytest.mark.parametrize("text", ["not: [valid", "- a list\n- at top"])
def test_bad_yaml(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1h", 3600),
        ("1h30m", 5400),
        ("90s", 90),
        ("500ms", 0.5),
        ("2d", 172800),
        (15, 15),
        ("15", 15),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "1x", "h1", "-5", True, "1h 30m"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_s3_storage_driver_in_zot_shape_with_env_and_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-from-a-file\n")
    path = write(
        tmp_path,
        "storage:\n  rootDirectory: /var/lib/zas\n  storageDriver:\n    name: s3\n"
        "    bucket: artifacts\n    region: eu-west-1\n    rootdirectory: /zas\n"
        "    accesskey: AKIAEXAMPLE\n    forcepathstyle: true\n",
    )
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_SECRETKEY_FILE": str(secret),
        "ZAS_STORAGE_STORAGEDRIVER_REGIONENDPOINT": "minio.local:9000",
        "ZAS_STORAGE_STORAGEDRIVER_SECURE": "false",
        "ZAS_STORAGE_STORAGEDRIVER_SSE": "AES256",
    }
    driver = load_config(path, environ=environ).storage.storageDriver
    assert (driver.name, driver.bucket, driver.region) == ("s3", "artifacts", "eu-west-1")
    assert (driver.regionendpoint, driver.secure, driver.forcepathstyle) == (
        "minio.local:9000",
        False,
        True,
    )
    assert (driver.accesskey, driver.secretkey, driver.sse) == (
        "AKIAEXAMPLE",
        "s3cr3t-from-a-file",
        "AES256",
    )
    assert "s3cr3t" not in repr(driver)
    # secretkeyFile in the file works the same way
    path = write(
        tmp_path,
        "storage:\n  storageDriver:\n    {name: s3, bucket: b, accesskey: k, "
        f"secretkeyFile: {secret}}}\n",
    )
    assert load_config(path, environ={}).storage.storageDriver.secretkey == "s3cr3t-from-a-file"
    assert load_config(None, environ={}).storage.storageDriver.name is None  # filesystem


@pytest.mark.parametrize(
    ("driver", "says"),
    [
        ({"NAME": "s3"}, "bucket is required when name is s3"),
        ({"NAME": "swift", "BUCKET": "b"}, "storage.storageDriver.name"),
        ({"NAME": "s3", "BUCKET": "b", "ACCESSKEY": "k"}, "set both accesskey and secretkey"),
        ({"NAME": "s3", "BUCKET": "b", "STORAGECLASS": "COLD"}, "storageclass must be one of"),
        ({"NAME": "s3", "BUCKET": "b", "CHUNKSIZE": "1048576"}, "storage.storageDriver.chunksize"),
        ({"NAME": "s3", "BUCKET": "b", "SSEKMSKEYID": "alias/x"}, "ssekmskeyid needs sse"),
        ({"NAME": "s3", "BUCKET": "b", "SECRETKEY_FILE": "/nonexistent"}, "cannot read"),
        ({"REDIRECT": "true"}, "redirect needs an object store"),
        ({"NAME": "s3", "BUCKET": "b", "REDIRECTEXPIRY": "10"}, "redirectexpiry"),
    ],
)
def test_s3_storage_driver_problems(driver: dict[str, str], says: str) -> None:
    environ = {f"ZAS_STORAGE_STORAGEDRIVER_{k}": v for k, v in driver.items()}
    with pytest.raises(ConfigError) as exc:
        load_config(None, environ=environ)
    assert says in str(exc.value)


def test_redirect_is_off_by_default_and_set_by_env() -> None:
    assert load_config(None, environ={}).storage.storageDriver.redirect is False
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "s3",
        "ZAS_STORAGE_STORAGEDRIVER_BUCKET": "b",
        "ZAS_STORAGE_STORAGEDRIVER_REDIRECT": "true",
        "ZAS_STORAGE_STORAGEDRIVER_REDIRECTEXPIRY": "600",
    }
    driver = load_config(None, environ=environ).storage.storageDriver
    assert (driver.redirect, driver.redirectexpiry) == (True, 600)


def test_azure_storage_driver_from_yaml_env_and_files(tmp_path: Path) -> None:
    key = tmp_path / "account-key"
    key.write_text("a2V5LWZyb20tYS1maWxl\n")
    path = write(
        tmp_path,
        "storage:\n  storageDriver:\n    name: azure\n    accountname: zasblobs\n"
        "    container: artifacts\n    rootdirectory: /zas\n",
    )
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_ACCOUNTKEY_FILE": str(key),
        "ZAS_STORAGE_STORAGEDRIVER_ENDPOINT": "http://127.0.0.1:10000/zasblobs",
    }
    driver = load_config(path, environ=environ).storage.storageDriver
    assert (driver.name, driver.accountname, driver.container) == ("azure", "zasblobs", "artifacts")
    assert (driver.accountkey, driver.endpoint) == (
        "a2V5LWZyb20tYS1maWxl",
        "http://127.0.0.1:10000/zasblobs",
    )
    assert "a2V5LWZyb20tYS1maWxl" not in repr(driver)  # a secret is never printed
    conn = tmp_path / "connection-string"
    conn.write_text("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=eA==\n")
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "azure",
        "ZAS_STORAGE_STORAGEDRIVER_CONTAINER": "c",
        "ZAS_STORAGE_STORAGEDRIVER_CONNECTIONSTRING_FILE": str(conn),
    }
    driver = load_config(None, environ=environ).storage.storageDriver
    assert driver.connectionstring == conn.read_text().strip() and driver.accountname is None
    # Neither key nor connection string: DefaultAzureCredential (workload identity).
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "azure",
        "ZAS_STORAGE_STORAGEDRIVER_CONTAINER": "c",
        "ZAS_STORAGE_STORAGEDRIVER_ACCOUNTNAME": "a",
    }
    driver = load_config(None, environ=environ).storage.storageDriver
    assert (driver.accountkey, driver.connectionstring, driver.realm) == (
        None,
        None,
        "core.windows.net",
    )


@pytest.mark.parametrize(
    ("driver", "says"),
    [
        ({"NAME": "azure", "ACCOUNTNAME": "a"}, "container is required when name is azure"),
        ({"NAME": "azure", "CONTAINER": "c"}, "accountname (or connectionstring) is required"),
        (
            {"NAME": "azure", "CONTAINER": "c", "ACCOUNTKEY": "k", "CONNECTIONSTRING": "x=y"},
            "set accountkey or connectionstring, not both",
        ),
        ({"NAME": "azure", "CONTAINER": "c", "ACCOUNTKEY_FILE": "/nonexistent"}, "cannot read"),
    ],
)
def test_azure_storage_driver_problems(driver: dict[str, str], says: str) -> None:
    environ = {f"ZAS_STORAGE_STORAGEDRIVER_{k}": v for k, v in driver.items()}
    with pytest.raises(ConfigError) as exc:
        load_config(None, environ=environ)
    assert says in str(exc.value)


def test_gcs_storage_driver(tmp_path: Path) -> None:
    keyfile = tmp_path / "sa.json"
    keyfile.write_text("{}")
    environ = {
        "ZAS_STORAGE_STORAGEDRIVER_NAME": "gcs",
        "ZAS_STORAGE_STORAGEDRIVER_BUCKET": "artifacts",
        "ZAS_STORAGE_STORAGEDRIVER_KEYFILE": str(keyfile),
        "ZAS_STORAGE_STORAGEDRIVER_ROOTDIRECTORY": "/zas",
    }
    driver = load_config(None, environ=environ).storage.storageDriver
    assert (driver.name, driver.bucket, driver.keyfile) == ("gcs", "artifacts", str(keyfile))
    for broken, says in (
        ({"ZAS_STORAGE_STORAGEDRIVER_BUCKET": ""}, "bucket is required when name is gcs"),
        ({"ZAS_STORAGE_STORAGEDRIVER_KEYFILE": "/nonexistent.json"}, "is not a readable file"),
    ):
        with pytest.raises(ConfigError) as exc:
            load_config(None, environ=environ | broken)
        assert says in str(exc.value)


def test_kubernetes_service_links_are_not_settings() -> None:
    """A Service named zas-store makes Kubernetes inject ZAS_STORE_SERVICE_HOST and friends
    into every pod of the namespace: they must not stop the server; real typos still do."""
    links = {
        "ZAS_STORE_SERVICE_HOST": "10.0.0.7",
        "ZAS_STORE_SERVICE_PORT": "8080",
        "ZAS_STORE_SERVICE_PORT_HTTP": "8080",
        "ZAS_STORE_PORT": "tcp://10.0.0.7:8080",
        "ZAS_STORE_PORT_8080_TCP": "tcp://10.0.0.7:8080",
        "ZAS_STORE_PORT_8080_TCP_PROTO": "tcp",
        "ZAS_STORE_PORT_8080_TCP_PORT": "8080",
        "ZAS_STORE_PORT_8080_TCP_ADDR": "10.0.0.7",
    }
    assert load_config(None, environ=links).http.port == 8080
    with pytest.raises(ConfigError, match="ZAS_HTTP_PROT: unknown setting"):
        load_config(None, environ={**links, "ZAS_HTTP_PROT": "9000"})


def test_oidc_login_for_the_web_ui(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
auth:
  oidc:
    - {issuer: "https://sso.example.com/realms/a", audience: zas, ui: {clientId: zas-ui}}
""",
    )
    ui = load_config(path, environ={}).auth.oidc[0].ui
    assert ui is not None and (ui.clientId, ui.redirectUri) == ("zas-ui", None)
    assert ui.scopes == ["openid", "profile"]


@pytest.mark.parametrize(
    ("oidc", "says"),
    [
        ('[{issuer: "https://a", audience: z, ui: {clientId: c, scopes: [profile]}}]',
         "must include openid"),
        ('[{issuer: "https://a", audience: z, ui: {clientId: c, redirectUri: "/cb"}}]',
         "must be an http(s) URL"),
        ('[{issuer: "https://a", audience: z, ui: {}}]', "clientId"),
        ('[{issuer: "https://a", audience: z, ui: {clientId: c}},'
         ' {issuer: "https://b", audience: z, ui: {clientId: c}}]',
         "the web UI logs in at one issuer only"),
    ],
)  # fmt: skip
def test_oidc_login_problems(tmp_path: Path, oidc: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"auth:\n  oidc: {oidc}\n"), environ={})
    assert says in str(err.value), str(err.value)
