"""Static API keys: digests only, constant-time match, keys never echoed."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster.config import AuthSettings, parse_config
from cluster.errors import ConfigError, Unauthenticated
from cluster.gateway.auth import (
    ANONYMOUS,
    Authenticator,
    OpenAccess,
    StaticKeyAuthenticator,
    bearer_token,
    build_authenticator,
    configured_digests,
    digest_key,
)

KEY = "sk-test-alpha-0123456789"
OTHER = "sk-test-beta-9876543210"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()
OTHER_DIGEST = hashlib.sha256(OTHER.encode()).hexdigest()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer {KEY}", KEY),
        (f"BEARER   {KEY}  ", KEY),
        (f"  Bearer\t{KEY}", KEY),
    ],
)
def test_bearer_token_accepts(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "invalid_api_key"),
        ("", "invalid_api_key"),
        ("   ", "invalid_api_key"),
        ("Bearer", "invalid_authorization_header"),
        ("Bearer ", "invalid_authorization_header"),
        (f"Basic {KEY}", "invalid_authorization_header"),
        (KEY, "invalid_authorization_header"),
        (f"Bearer {KEY} extra", "invalid_authorization_header"),
        (f"Bearer{KEY}", "invalid_authorization_header"),
    ],
)
def test_bearer_token_refuses(header: str | None, code: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        bearer_token(header)
    assert info.value.code == code
    assert KEY not in str(info.value)


def test_digest_key_is_sha256_hex() -> None:
    assert digest_key(KEY) == DIGEST
    assert len(digest_key("")) == 64


async def test_right_key_gives_a_principal_named_by_digest_prefix() -> None:
    auth = StaticKeyAuthenticator([DIGEST, OTHER_DIGEST])
    assert isinstance(auth, Authenticator)
    assert auth.enabled
    first = await auth.authenticate(f"Bearer {KEY}")
    second = await auth.authenticate(f"Bearer {OTHER}")
    assert first.key_id == DIGEST[:12]
    assert second.key_id == OTHER_DIGEST[:12]
    assert not first.anonymous
    assert KEY not in repr(first)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer sk-wrong", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", f"Token {KEY}", DIGEST],
)
async def test_wrong_or_missing_key_is_unauthenticated(header: str | None) -> None:
    auth = StaticKeyAuthenticator([DIGEST])
    with pytest.raises(Unauthenticated) as info:
        await auth.authenticate(header)
    assert info.value.http_status == 401
    assert "sk-" not in info.value.message


async def test_presenting_the_digest_itself_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        await StaticKeyAuthenticator([DIGEST]).authenticate(f"Bearer {DIGEST}")


def test_static_authenticator_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StaticKeyAuthenticator([])


async def test_open_access_accepts_anyone() -> None:
    auth = OpenAccess()
    assert isinstance(auth, Authenticator)
    assert not auth.enabled
    assert await auth.authenticate(None) is ANONYMOUS
    assert (await auth.authenticate("Bearer whatever")).anonymous


def test_settings_normalise_digests() -> None:
    settings = AuthSettings(api_key_sha256=[f"  {DIGEST.upper()} "])
    assert settings.api_key_sha256 == [DIGEST]


@pytest.mark.parametrize("value", [KEY, DIGEST[:-1], DIGEST + "0", "z" * 64, ""])
def test_settings_refuse_non_digests_without_echoing_them(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        AuthSettings(api_key_sha256=[DIGEST, value])
    text = str(info.value)
    assert "item 1 is not a SHA-256 hex digest" in text
    if value:
        assert value not in text


def test_cluster_file_auth_section_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"models": [{"id": "qwen/qwen3-coder-flash"}], "auth": {"api_key_sha256": [KEY]}}
        )
    assert "auth.api_key_sha256" in str(info.value)
    assert KEY not in str(info.value)
    config = parse_config(
        {"models": [{"id": "qwen/qwen3-coder-flash"}], "auth": {"api_key_sha256": [DIGEST]}}
    )
    assert config.auth.api_key_sha256 == [DIGEST]
    assert parse_config({"models": [{"id": "qwen/qwen3-coder-flash"}]}).auth == AuthSettings()


def test_digest_file_merges_with_inline_digests(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# team a\n{OTHER_DIGEST.upper()}  # rotated 2026-01\n\n{DIGEST}\n")
    settings = AuthSettings(api_key_sha256=[DIGEST], api_keys_file=path)
    assert configured_digests(settings) == {DIGEST, OTHER_DIGEST}


def test_digest_file_bad_line_is_named_by_number_only(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{DIGEST}\n{KEY}\n")
    with pytest.raises(ConfigError) as info:
        configured_digests(AuthSettings(api_keys_file=path))
    assert "line 2" in str(info.value)
    assert info.value.param == "auth.api_keys_file"
    assert KEY not in str(info.value)


def test_missing_digest_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.api_keys_file: cannot read"):
        configured_digests(AuthSettings(api_keys_file=tmp_path / "absent"))


async def test_build_authenticator_says_when_auth_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cluster.gateway.auth"):
        off = build_authenticator(AuthSettings())
        on = build_authenticator(AuthSettings(api_key_sha256=[DIGEST]))
    assert not off.enabled
    assert on.enabled
    assert any("authentication is OFF" in r.getMessage() for r in caplog.records)
    assert any("1 API key digest(s)" in r.getMessage() for r in caplog.records)
    assert all(DIGEST not in r.getMessage() for r in caplog.records)
    assert (await on.authenticate(f"Bearer {KEY}")).key_id == DIGEST[:12]


def test_cli_prints_the_digest_of_a_key_from_stdin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cluster.gateway.auth"],
        input=KEY,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == DIGEST
