"""Admin auth: token and cookie checks, expiry, throttling, the Origin rule."""

from __future__ import annotations

import pytest

from dashboard.auth import AdminAuth, LoginThrottle, RevokedSessions, Verdict
from tests.conftest import FakeClock as Clock

TOKEN = "s3cret-token"


@pytest.fixture
def auth(clock: Clock) -> AdminAuth:
    return AdminAuth(TOKEN, clock, cookie_ttl=3600, throttle=LoginThrottle(clock, window=60))


def test_bearer_token(auth: AdminAuth) -> None:
    assert auth.check(f"Bearer {TOKEN}", None, "1.1.1.1") is Verdict.OK
    assert auth.check(f"bearer {TOKEN}", None, "1.1.1.1") is Verdict.OK
    assert auth.check("Bearer nope", None, "1.1.1.1") is Verdict.INVALID
    assert auth.check(None, None, "1.1.1.1") is Verdict.MISSING
    assert auth.check(f"Basic {TOKEN}", None, "1.1.1.1") is Verdict.MISSING


def test_cookie_round_trip_and_expiry(auth: AdminAuth, clock: Clock) -> None:
    cookie = auth.issue_cookie()
    assert TOKEN not in cookie
    assert auth.check(None, cookie, "a") is Verdict.OK
    clock.now += 3600
    assert auth.cookie_expiry(cookie) is None
    assert auth.check(None, cookie, "a") is Verdict.INVALID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "123",
        "abc.def",
        "99999999999999.x",
        "1700003600.forged",
        "1700003600.sid.forged",
        "1700003600..sig",
        "1.2.3.4",
    ],
)
def test_forged_cookies_fail(auth: AdminAuth, value: str) -> None:
    assert auth.cookie_expiry(value) is None


def test_tampered_expiry_or_session_id_fails(auth: AdminAuth) -> None:
    expiry, session_id, signature = auth.issue_cookie().split(".")
    assert auth.cookie_expiry(f"{int(expiry) + 1000}.{session_id}.{signature}") is None
    assert auth.cookie_expiry(f"{expiry}.{session_id}x.{signature}") is None


def test_logout_revokes_that_cookie_only(auth: AdminAuth, clock: Clock) -> None:
    cookie, other = auth.issue_cookie(), auth.issue_cookie()
    assert auth.revoke(cookie)
    assert auth.cookie_expiry(cookie) is None
    assert auth.check(None, cookie, "a") is Verdict.INVALID
    assert auth.check(None, other, "a") is Verdict.OK  # another login stays valid
    assert not auth.revoke("forged.cookie.value")
    clock.now += 3600  # the revoked entry leaves with the cookie's expiry
    assert len(auth.revoked) == 0


def test_revoked_sessions_are_bounded(clock: Clock) -> None:
    revoked = RevokedSessions(clock, limit=2)
    for sid in ("a", "b", "c"):
        revoked.revoke(sid, clock.now + 10)
    assert "a" not in revoked
    assert "c" in revoked
    assert len(revoked) == 2


def test_cookie_from_another_token_fails(auth: AdminAuth, clock: Clock) -> None:
    other = AdminAuth("another-token", clock)
    assert auth.cookie_expiry(other.issue_cookie()) is None


def test_bearer_wins_over_cookie(auth: AdminAuth) -> None:
    assert auth.check("Bearer wrong", auth.issue_cookie(), "a") is Verdict.INVALID


def test_failures_throttle_per_address(auth: AdminAuth, clock: Clock) -> None:
    for _ in range(5):
        assert auth.login("wrong", "10.0.0.1") is Verdict.INVALID
    assert auth.login("wrong", "10.0.0.1") is Verdict.THROTTLED
    assert auth.check("Bearer wrong", None, "10.0.0.1") is Verdict.THROTTLED
    assert auth.check(None, "forged.cookie.x", "10.0.0.1") is Verdict.THROTTLED
    assert auth.login("wrong", "10.0.0.2") is Verdict.INVALID  # other addresses are unaffected
    assert auth.throttle.retry_after("10.0.0.1") == pytest.approx(60)
    clock.now += 60.01
    assert auth.login("wrong", "10.0.0.1") is Verdict.INVALID


def test_a_right_credential_passes_from_a_throttled_address(auth: AdminAuth) -> None:
    # an attacker sharing the operator's address (NAT, proxy) must not lock the operator out
    for _ in range(10):
        auth.login("wrong", "10.0.0.1")
    assert auth.throttle.retry_after("10.0.0.1") > 0
    assert auth.check(f"Bearer {TOKEN}", None, "10.0.0.1") is Verdict.OK
    assert auth.check(None, auth.issue_cookie(), "10.0.0.1") is Verdict.OK
    assert auth.login(TOKEN, "10.0.0.1") is Verdict.OK


def test_missing_credentials_do_not_count(auth: AdminAuth) -> None:
    for _ in range(20):
        assert auth.check(None, None, "a") is Verdict.MISSING
        assert auth.login("", "a") is Verdict.MISSING
    assert auth.login(TOKEN, "a") is Verdict.OK


def test_success_clears_failures(auth: AdminAuth) -> None:
    for _ in range(4):
        auth.login("wrong", "a")
    auth.login(TOKEN, "a")
    for _ in range(4):
        auth.login("wrong", "a")
    assert auth.login(TOKEN, "a") is Verdict.OK


def test_throttle_tracks_bounded_addresses(clock: Clock) -> None:
    throttle = LoginThrottle(clock, max_failures=1, max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert throttle.retry_after("a") == 0  # evicted: the oldest address is forgotten first
    assert throttle.retry_after("c") > 0


def test_empty_token_is_refused(clock: Clock) -> None:
    with pytest.raises(ValueError, match="token"):
        AdminAuth("", clock)


def test_a_revocation_notice_revokes_on_a_peer_sharing_the_token(clock: Clock) -> None:
    here, peer = AdminAuth(TOKEN, clock), AdminAuth(TOKEN, clock)
    cookie = here.issue_cookie()
    notice = here.revocation_notice(cookie)
    assert notice is not None
    assert cookie.split(".")[2] not in str(notice)  # the cookie's signature is not published
    assert peer.check(None, cookie, "a") is Verdict.OK
    assert peer.accept_revocation(notice)
    assert peer.check(None, cookie, "a") is Verdict.INVALID
    assert here.revocation_notice("forged.cookie.x") is None


@pytest.mark.parametrize(
    "change",
    [
        {"sig": "forged"},
        {"sid": "other"},
        {"sid": "a|b"},
        {"expiry": "1"},
        {"sig": None},
    ],
)
def test_forged_or_malformed_revocation_notices_are_refused(
    auth: AdminAuth, change: dict[str, object]
) -> None:
    cookie = auth.issue_cookie()
    notice = auth.revocation_notice(cookie)
    assert notice is not None
    assert not auth.accept_revocation({**notice, **change})
    assert not auth.accept_revocation([notice])
    assert auth.cookie_expiry(cookie) is not None


def test_a_notice_signature_is_never_a_cookie(auth: AdminAuth) -> None:
    notice = auth.revocation_notice(auth.issue_cookie())
    assert notice is not None
    forged = f"{notice['expiry']}.{notice['sid']}.{notice['sig']}"
    assert auth.cookie_expiry(forged) is None
    smuggled = f"{notice['expiry']}.revoke|{notice['sid']}.{notice['sig']}"
    assert auth.cookie_expiry(smuggled) is None


def test_an_expired_notice_is_valid_but_needs_no_entry(auth: AdminAuth, clock: Clock) -> None:
    notice = auth.revocation_notice(auth.issue_cookie())
    clock.advance(3600)
    assert auth.accept_revocation(notice)
    assert len(auth.revoked) == 0
