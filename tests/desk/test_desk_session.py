"""The desk's session cookie and CSRF tokens, and the shared secret of several
service processes."""

from __future__ import annotations

import pytest

from lastresort.service.desk.session import SECRET_ENV, Signer, secret_from_env

SECRET = b"s" * 32


def test_a_session_signed_by_one_process_is_read_by_another_with_the_same_secret() -> None:
    session, cookie = Signer(SECRET).new_session("abcdef012345")
    assert Signer(SECRET).session(cookie) == session
    assert Signer(b"t" * 32).session(cookie) is None
    assert Signer().session(cookie) is None  # a random secret per process


def test_an_expired_session_is_over() -> None:
    now = [1_000_000.0]
    signer = Signer(SECRET, now=lambda: now[0])
    _, cookie = signer.new_session("abcdef012345")
    now[0] += 12 * 3600 - 1
    assert signer.session(cookie) is not None
    now[0] += 1
    assert signer.session(cookie) is None


@pytest.mark.parametrize("cookie", [None, "", "x", "a.b.c", "e30.AAAA", "W10.xx"])
def test_a_malformed_cookie_is_no_session(cookie: str | None) -> None:
    assert Signer(SECRET).session(cookie) is None


def test_csrf_tokens_are_per_session() -> None:
    signer = Signer(SECRET)
    one, _ = signer.new_session("abcdef012345")
    two, _ = signer.new_session("abcdef012345")
    assert signer.csrf_ok(one.nonce, signer.csrf(one.nonce))
    assert not signer.csrf_ok(two.nonce, signer.csrf(one.nonce))
    assert not signer.csrf_ok(one.nonce, None)
    assert not signer.csrf_ok(None, signer.csrf(one.nonce))


def test_a_short_secret_is_refused_without_quoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Signer(b"short")
    monkeypatch.setenv(SECRET_ENV, "hunter2")
    with pytest.raises(ValueError, match="at least 32 bytes") as caught:
        secret_from_env()
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv(SECRET_ENV, "x" * 40)
    assert secret_from_env() == b"x" * 40
    monkeypatch.delenv(SECRET_ENV)
    assert secret_from_env() is None
