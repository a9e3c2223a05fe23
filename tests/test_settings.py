"""Settings: flag > environment > profile > default, each value with its origin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gonka_cli.endpoints import Endpoint
from gonka_cli.errors import ConfigError
from gonka_cli.settings import (
    AuthMode,
    Profile,
    RetryPolicy,
    Source,
    choose_auth,
    display,
    load_api_key,
    load_profile,
    load_settings,
    resolve,
    targets,
)
from tests import vectors as v

PROFILE = Profile({"model": "from-profile", "max_retries": 5, "source_url": "http://p:1"}, "t")


def test_flag_beats_env_beats_profile_beats_default() -> None:
    """Each layer wins over the ones below it, and says where the value came from."""
    env = {"GONKA_MODEL": "from-env", "GONKA_MAX_RETRIES": "4"}
    settings = resolve({"max_retries": 9}, env, PROFILE)
    assert (settings["max_retries"].value, settings["max_retries"].origin) == (9, "--max-retries")
    assert (settings["model"].value, settings["model"].origin) == ("from-env", "$GONKA_MODEL")
    assert settings["source_url"].source is Source.PROFILE
    assert settings["connect_timeout"].value == 10.0
    assert settings["connect_timeout"].source is Source.DEFAULT


def test_sdk_and_docs_variable_names() -> None:
    """GONKA_ENDPOINTS splits on commas; GONKA_ENDPOINT and GONKA_PROVIDER_ADDRESS are read."""
    env = {
        "GONKA_ENDPOINTS": f"http://a:1;{v.PUBKEY_ADDRESS}, http://b:2;{v.PRIVATE_KEY_ADDRESS}",
        "GONKA_ENDPOINT": "http://node:8000",
        "GONKA_PROVIDER_ADDRESS": v.PUBKEY_ADDRESS,
    }
    settings = resolve({}, env, Profile({}))
    assert len(settings.strings("endpoints")) == 2
    assert settings.text("node_address") == "http://node:8000"
    assert settings["transfer_address"].origin == "$GONKA_PROVIDER_ADDRESS"


def test_bad_values_are_config_errors() -> None:
    """Wrong kinds and unknown profile keys name where they came from."""
    with pytest.raises(ConfigError, match=r"\$GONKA_MAX_RETRIES: expected an integer"):
        resolve({}, {"GONKA_MAX_RETRIES": "many"}, Profile({}))
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve({}, {}, Profile({"modle": "x"}, "t"))
    for secret in ("api_key", "private_key"):  # files are read by others; secrets stay out
        with pytest.raises(ConfigError, match=f"{secret} may not be kept in a config file"):
            resolve({}, {}, Profile({secret: "obk-0123456789abcdef"}, "t"))
    with pytest.raises(ConfigError, match="expected true or false"):
        resolve({}, {"GONKA_FOLLOW_MOVED": "perhaps"}, Profile({}))


def test_profiles_from_the_config_file(tmp_path: Path) -> None:
    """[profiles.NAME] tables; the default profile is optional, a named one must exist."""
    path = tmp_path / "config.toml"
    path.write_text('[profiles.default]\nmodel = "d"\n[profiles.b]\nauth = "bearer"\n')
    assert load_profile(None, path=path).values == {"model": "d"}
    assert load_profile("b", path=path).values == {"auth": "bearer"}
    with pytest.raises(ConfigError, match="no profile 'c'") as caught:
        load_profile("c", path=path)
    assert "b, default" in str(caught.value.hint)
    assert load_profile(None, path=tmp_path / "missing.toml").values == {}
    path.write_text("[profiles\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(None, path=path)


def test_load_settings_uses_gonka_home_and_gonka_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config file lives in the gonka directory; GONKA_PROFILE picks the profile."""
    monkeypatch.setenv("GONKA_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text('[profiles.work]\nmodel = "w"\n')
    settings = load_settings({}, env={"GONKA_PROFILE": "work"})
    assert settings.text("model") == "w"
    assert settings["model"].origin.startswith("profile 'work'")


@pytest.mark.parametrize(
    ("requested", "signing", "bearer", "expected"),
    [
        ("auto", True, False, AuthMode.SIGNATURE),
        ("auto", False, True, AuthMode.BEARER),
        ("bearer", True, True, AuthMode.BEARER),
        ("signature", False, False, AuthMode.SIGNATURE),
    ],
)
def test_auth_choice(requested: str, signing: bool, bearer: bool, expected: AuthMode) -> None:
    """auto follows the single configured key; an explicit --auth wins."""
    assert choose_auth(requested, signing=signing, bearer=bearer) is expected


@pytest.mark.parametrize(
    ("signing", "fragment", "advice"),
    [(True, "both", "--auth bearer"), (False, "no key", "GONKA_BROKER_API_KEY")],
)
def test_auth_auto_says_what_to_pass(signing: bool, fragment: str, advice: str) -> None:
    """With both keys or neither, auto refuses and names the flags or variables to use."""
    with pytest.raises(ConfigError, match=fragment) as caught:
        choose_auth("auto", signing=signing, bearer=signing)
    assert advice in str(caught.value.hint)


def test_targets_strongest_source_wins() -> None:
    """A --node-address flag beats GONKA_ENDPOINTS; the transfer address applies to it."""
    env = {"GONKA_ENDPOINTS": f"http://a:1;{v.PUBKEY_ADDRESS}"}
    flags = {"node_address": "http://n:2/", "transfer_address": v.PRIVATE_KEY_ADDRESS}
    settings = resolve(flags, env, Profile({}))
    assert targets(settings, AuthMode.SIGNATURE) == (
        (Endpoint("http://n:2/v1", v.PRIVATE_KEY_ADDRESS),),
        None,
    )
    only_env = resolve({}, {**env, "GONKA_SOURCE_URL": "http://s:3"}, Profile({}))
    assert targets(only_env, AuthMode.SIGNATURE)[0] == (
        Endpoint("http://a:1/v1", v.PUBKEY_ADDRESS),
    )
    source = resolve({"source_url": "http://s:3"}, env, Profile({}))
    assert targets(source, AuthMode.SIGNATURE) == ((), "http://s:3/v1")


def test_bearer_target_is_the_broker_url() -> None:
    """In bearer mode GONKA_BROKER_URL is the base URL, and a flag overrides it."""
    env = {"GONKA_BROKER_URL": "https://broker/v1", "GONKA_ENDPOINT": "http://ta:1"}
    assert targets(resolve({}, env, Profile({})), AuthMode.BEARER)[0] == (
        Endpoint("https://broker/v1"),
    )
    flagged = resolve({"node_address": "https://other"}, env, Profile({}))
    assert targets(flagged, AuthMode.BEARER)[0] == (Endpoint("https://other/v1"),)
    with pytest.raises(ConfigError, match="no broker or gateway base URL"):
        targets(resolve({}, {}, Profile({})), AuthMode.BEARER)


def test_api_key_sources(tmp_path: Path) -> None:
    """The key comes from a file, a command, or the environment; flags first."""
    key_file = tmp_path / "key"
    key_file.write_text("obk-from-file\n")
    env = {"GONKA_BROKER_API_KEY": "obk-from-env"}
    assert load_api_key(resolve({}, env, Profile({}))) == "obk-from-env"
    assert load_api_key(resolve({"api_key_file": str(key_file)}, env, Profile({}))) == (
        "obk-from-file"
    )
    command = f"{sys.executable} -c \"print('obk-from-cmd')\""
    assert load_api_key(resolve({"api_key_cmd": command}, env, Profile({}))) == "obk-from-cmd"
    failing = f'{sys.executable} -c "raise SystemExit(3)"'
    with pytest.raises(ConfigError, match="exited with 3"):
        load_api_key(resolve({"api_key_cmd": failing}, {}, Profile({})))


def test_secrets_are_masked_for_display() -> None:
    """config show never prints a key: an API key's last four characters, a private key's none."""
    env = {"GONKA_BROKER_API_KEY": "obk-0123456789abcdef", "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    settings = resolve({}, env, Profile({}))
    assert display(settings, "api_key") == "***cdef"
    assert display(settings, "private_key") == "***"


def test_backoff_grows_and_is_capped() -> None:
    """Exponential backoff with jitter between half and all of the step, capped."""
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    assert policy.backoff(1, 0.0) == 0.5
    assert policy.backoff(2, 0.999999) == pytest.approx(2.0, rel=1e-5)
    assert policy.backoff(10, 0.0) == 2.0
