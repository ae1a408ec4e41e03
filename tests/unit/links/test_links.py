"""Signed links without a server: the TTL cap, download names, local HMAC links, secrecy."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.exceptions import (
    ConfigurationError,
    IntegrityError,
    InvalidObjectKeyError,
    ObjectNotFoundError,
    UnsupportedError,
)
from ctfy_vault.links import (
    CLOCK_SKEW,
    MAX_TTL,
    LinkPolicy,
    LinkSigner,
    SignedLink,
    VerifiedLink,
    check_not_public,
    content_disposition,
    presign,
    verify_link,
)
from ctfy_vault.storage import MAX_EXPIRES_IN, Target
from tests.support.link_strategies import (
    EPOCH,
    SECOND,
    DurationArg,
    FullLie,
    SecondsLie,
    TimeArg,
    check_window,
    durations,
    floor_seconds,
    hmac_expiry,
    hmac_expiry_seconds,
    lying_duration,
    must_accept,
    sigv4_window,
    times,
)
from tests.support.strategies import object_keys

SECRET = b"k" * 32
BASE = "https://app.example/download"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SIGNER = LinkSigner(SECRET, BASE)


def _current() -> datetime:
    """The current time in whole seconds, as a caller passes ``now`` to `presign`."""
    return datetime.now(UTC).replace(microsecond=0)


def _s3_offline() -> Target:
    # Signing is local: the endpoint is never contacted.
    return Target.from_url(
        "s3://docs-bucket/tenant",
        endpoint_url="http://127.0.0.1:9",
        key="AKIDEXAMPLE",
        secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="default",
    )


@functools.cache
def _shared_s3_offline() -> Target:
    """One offline S3 target for property tests: building a client per example costs ~0.1 s."""
    return _s3_offline()


@pytest.fixture
def local(tmp_path: Path) -> Target:
    """A local-disk target holding one document."""
    target = Target.from_url(str(tmp_path / "docs"))
    target.write("contracts/4711.pdf", b"%PDF contract")
    return target


ttls = st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(hours=3))


class TestTTLCap:
    @given(ttl=ttls)
    @settings(max_examples=200, deadline=None)
    def test_local_link_lives_between_one_second_and_one_hour(self, ttl: timedelta) -> None:
        """Any TTL either is refused or yields a link that expires within (0, 1 h] of signing."""
        now = _current()
        target = Target.from_url("memory://links/prop")
        try:
            link = presign(target, "a.pdf", ttl=ttl, signer=SIGNER, now=now)
        except ConfigurationError:
            assert ttl > MAX_TTL or ttl < timedelta(seconds=1)
            return
        life = link.expires_at - now
        assert timedelta(seconds=1) <= life <= MAX_TTL
        assert life <= ttl
        assert verify_link(link.url, SIGNER, now=now).expires_at == link.expires_at

    @given(ttl=ttls)
    @settings(max_examples=100, deadline=None)
    def test_s3_link_never_signs_more_than_an_hour(self, ttl: timedelta) -> None:
        """An S3 link's X-Amz-Expires is the TTL in whole seconds, never above 3600."""
        try:
            link = presign(_shared_s3_offline(), "a.pdf", ttl=ttl)
        except ConfigurationError:
            assert ttl > MAX_TTL or ttl < timedelta(seconds=1)
            return
        query = parse_qs(urlsplit(link.url).query)
        assert 1 <= int(query["X-Amz-Expires"][0]) <= 3600
        assert int(query["X-Amz-Expires"][0]) == int(ttl.total_seconds())

    @given(cap=st.timedeltas(min_value=timedelta(seconds=1), max_value=MAX_TTL), ttl=ttls)
    @settings(max_examples=100, deadline=None)
    def test_policy_may_lower_the_cap(self, cap: timedelta, ttl: timedelta) -> None:
        """A policy's lower cap is enforced; a link never outlives the policy."""
        now = _current()
        policy = LinkPolicy(max_ttl=cap)
        target = Target.from_url("memory://links/policy")
        try:
            link = presign(target, "a", ttl=ttl, policy=policy, signer=SIGNER, now=now)
        except ConfigurationError:
            assert ttl > cap or ttl < timedelta(seconds=1)
            return
        assert link.expires_at - now <= cap

    @given(cap=st.timedeltas(min_value=MAX_TTL + timedelta(microseconds=1)))
    def test_policy_cannot_raise_the_cap(self, cap: timedelta) -> None:
        """A policy allowing more than one hour cannot be built."""
        with pytest.raises(ConfigurationError, match="may not exceed"):
            LinkPolicy(max_ttl=cap)

    def test_over_an_hour_is_refused_with_a_clear_message(self) -> None:
        """Asking for 61 minutes names the cap."""
        with pytest.raises(ConfigurationError, match=r"at most 1:00:00"):
            presign(_s3_offline(), "a.pdf", ttl=timedelta(minutes=61))

    @pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), timedelta(0, 0, 999)])
    def test_zero_negative_and_subsecond_ttls_are_refused(self, ttl: timedelta) -> None:
        """A link must live at least one second."""
        with pytest.raises(ConfigurationError, match="at least one second"):
            presign(_s3_offline(), "a.pdf", ttl=ttl)

    def test_non_timedelta_ttl_is_refused(self) -> None:
        """A bare number is ambiguous (seconds? minutes?) and refused."""
        with pytest.raises(ConfigurationError, match="timedelta"):
            presign(_s3_offline(), "a.pdf", ttl=600)  # type: ignore[arg-type]


class TestS3Signing:
    def test_sigv4_is_used(self) -> None:
        """S3 links carry a SigV4 signature (never SigV2's Signature/AWSAccessKeyId)."""
        link = presign(_s3_offline(), "a.pdf")
        query = parse_qs(urlsplit(link.url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert "/default/s3/aws4_request" in query["X-Amz-Credential"][0]
        assert "Signature" not in query
        assert "AWSAccessKeyId" not in query
        assert link.scheme == "sigv4"

    def test_path_style_keeps_the_root_prefix(self) -> None:
        """The URL names the bucket in the path and the key under the target's root."""
        link = presign(_s3_offline(), "contracts/ä b.pdf")
        assert urlsplit(link.url).path == "/docs-bucket/tenant/contracts/%C3%A4%20b.pdf"

    def test_virtual_host_style_when_configured(self) -> None:
        """With virtual addressing the bucket moves into the host name."""
        target = Target.from_url(
            "s3://docs-bucket",
            endpoint_url="https://fra1.digitaloceanspaces.com",
            key="AKID",
            secret="secret",
            region="fra1",
            addressing_style="virtual",
        )
        parts = urlsplit(presign(target, "a.pdf").url)
        assert parts.hostname == "docs-bucket.fra1.digitaloceanspaces.com"
        assert parts.path == "/a.pdf"

    def test_download_name_and_type_are_signed_into_the_request(self) -> None:
        """The disposition and type travel as response-* parameters covered by the signature."""
        link = presign(
            _s3_offline(), "a.pdf", filename="Façade €.pdf", content_type="application/pdf"
        )
        query = parse_qs(urlsplit(link.url).query)
        assert query["response-content-disposition"] == [
            "attachment; filename=\"Facade _.pdf\"; filename*=UTF-8''Fa%C3%A7ade%20%E2%82%AC.pdf"
        ]
        assert query["response-content-type"] == ["application/pdf"]

    def test_client_ip_is_unsupported_on_s3(self) -> None:
        """SigV4 links cannot be bound to an address; asking is an error, not a silent no-op."""
        with pytest.raises(UnsupportedError, match="bucket policy"):
            presign(_s3_offline(), "a.pdf", client_ip="10.0.0.1")

    def test_now_is_refused_for_s3(self) -> None:
        """S3 signatures use the system clock, so an injected time would lie about expiry."""
        now = _current()
        with pytest.raises(ConfigurationError, match="system clock"):
            presign(_s3_offline(), "a.pdf", now=now)

    @pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "get"])
    def test_only_read_methods(self, method: str) -> None:
        """Links are read-only."""
        with pytest.raises(ConfigurationError, match="read-only"):
            presign(_s3_offline(), "a.pdf", method=method)

    @pytest.mark.parametrize("key", ["../other/a.pdf", "/etc/passwd", "a/../../b", "", "a\x00b"])
    def test_keys_outside_the_root_are_refused(self, key: str) -> None:
        """A key that could leave the target's root is refused before signing."""
        with pytest.raises(InvalidObjectKeyError):
            presign(_s3_offline(), key)


class TestContentDisposition:
    def test_ascii_name_is_quoted_only(self) -> None:
        """A plain name needs no extended parameter."""
        assert content_disposition("report 2026.pdf") == 'attachment; filename="report 2026.pdf"'

    def test_quotes_and_separators_are_replaced_in_the_fallback(self) -> None:
        """Quotes, backslashes and slashes cannot break out of the quoted fallback."""
        value = content_disposition('a"b\\c/d.txt')
        assert value.startswith("attachment; filename=\"a_b_c_d.txt\"; filename*=UTF-8''")
        assert "a%22b%5Cc%2Fd.txt" in value

    @given(name=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1))
    def test_any_name_gives_an_ascii_header(self, name: str) -> None:
        """Every name yields a printable-ASCII header whose filename* decodes back to the name."""
        from urllib.parse import unquote

        value = content_disposition(name)
        assert value.isascii()
        assert all(" " <= ch <= "~" for ch in value)
        if "filename*=UTF-8''" in value:
            assert unquote(value.split("filename*=UTF-8''", 1)[1]) == name

    @pytest.mark.parametrize("name", ["", "a\nb", "a\rb"])
    def test_bad_names_are_refused(self, name: str) -> None:
        """Empty names and control characters (header injection) are refused."""
        with pytest.raises(ConfigurationError):
            content_disposition(name)


class TestLocalLinks:
    def test_roundtrip(self, local: Target) -> None:
        """A fresh local link verifies and grants exactly its key, name and type."""
        now = _current()
        link = presign(
            local,
            "contracts/4711.pdf",
            ttl=timedelta(minutes=5),
            filename="Vertrag ü.pdf",
            content_type="application/pdf",
            signer=SIGNER,
            now=now,
            check_exists=True,
        )
        granted = verify_link(link.url, SIGNER, now=now + timedelta(minutes=4))
        assert granted.key == "contracts/4711.pdf"
        assert granted.filename == "Vertrag ü.pdf"
        assert granted.content_type == "application/pdf"
        assert granted.expires_at == now + timedelta(minutes=5)
        assert local.read(granted.key) == b"%PDF contract"

    def test_expired_link_is_refused(self, local: Target) -> None:
        """At and after its expiry time the link is refused."""
        now = _current()
        link = presign(
            local, "contracts/4711.pdf", ttl=timedelta(seconds=2), signer=SIGNER, now=now
        )
        verify_link(link.url, SIGNER, now=now + timedelta(seconds=1))
        for later in (timedelta(seconds=2), timedelta(hours=5)):
            with pytest.raises(IntegrityError):
                verify_link(link.url, SIGNER, now=now + later)

    def test_other_secret_or_endpoint_is_refused(self, local: Target) -> None:
        """A link signed with one secret is worthless to an endpoint with another."""
        now = _current()
        link = presign(local, "contracts/4711.pdf", signer=SIGNER, now=now)
        with pytest.raises(IntegrityError):
            verify_link(link.url, LinkSigner(b"x" * 32, BASE), now=now)
        with pytest.raises(IntegrityError):
            verify_link(link.url, LinkSigner(SECRET, "https://evil.example/download"), now=now)

    def test_bound_ip(self, local: Target) -> None:
        """A link bound to an address works only from that address."""
        now = _current()
        link = presign(local, "contracts/4711.pdf", client_ip="192.0.2.7", signer=SIGNER, now=now)
        assert verify_link(link.url, SIGNER, now=now, client_ip="192.0.2.7").key
        for other in ("192.0.2.8", None, "not-an-ip"):
            with pytest.raises(IntegrityError):
                verify_link(link.url, SIGNER, now=now, client_ip=other)

    def test_method_is_bound(self, local: Target) -> None:
        """A HEAD link does not serve a GET, and a GET link does not serve a HEAD."""
        now = _current()
        head = presign(local, "contracts/4711.pdf", method="HEAD", signer=SIGNER, now=now)
        get = presign(local, "contracts/4711.pdf", signer=SIGNER, now=now)
        verify_link(head.url, SIGNER, now=now, method="HEAD")
        with pytest.raises(IntegrityError):
            verify_link(head.url, SIGNER, now=now, method="GET")
        with pytest.raises(IntegrityError):
            verify_link(get.url, SIGNER, now=now, method="HEAD")

    @given(data=st.data(), key=object_keys())
    @settings(max_examples=300, deadline=None)
    def test_any_modified_byte_is_refused(self, data: st.DataObject, key: str) -> None:
        """Changing any one byte of a local link (to any other byte) makes it fail."""
        url = SIGNER.sign(
            key, expires_at=NOW + timedelta(minutes=10), filename="x.pdf", client_ip="10.0.0.1"
        ).encode("ascii")
        where = data.draw(st.integers(0, len(url) - 1))
        new = data.draw(st.integers(0, 255).filter(lambda b: b != url[where]))
        tampered = (url[:where] + bytes([new]) + url[where + 1 :]).decode("latin-1")
        with pytest.raises(IntegrityError):
            verify_link(tampered, SIGNER, now=NOW, client_ip="10.0.0.1")

    @given(
        data=st.data(),
        cut=st.integers(min_value=1, max_value=40),
        extra=st.text(min_size=1, max_size=20),
    )
    @settings(max_examples=100, deadline=None)
    def test_truncated_or_extended_links_are_refused(
        self, data: st.DataObject, cut: int, extra: str
    ) -> None:
        """Cutting bytes off a link or appending anything to it makes it fail."""
        url = SIGNER.sign("a/b.pdf", expires_at=NOW + timedelta(minutes=10))
        with pytest.raises(IntegrityError):
            verify_link(url[:-cut], SIGNER, now=NOW)
        with pytest.raises(IntegrityError):
            verify_link(url + extra, SIGNER, now=NOW)
        with pytest.raises(IntegrityError):
            verify_link(data.draw(st.text(max_size=200)), SIGNER, now=NOW)

    def test_local_target_needs_a_signer(self, local: Target) -> None:
        """Without an endpoint and secret a local target cannot sign."""
        with pytest.raises(ConfigurationError, match="signer"):
            presign(local, "contracts/4711.pdf")

    def test_missing_object_with_check(self, local: Target) -> None:
        """With check_exists, a missing object is refused before signing."""
        with pytest.raises(ObjectNotFoundError):
            presign(local, "contracts/none.pdf", signer=SIGNER, check_exists=True)

    @pytest.mark.parametrize(
        ("secret", "base"),
        [
            (b"short", BASE),
            (SECRET, "ftp://app.example/d"),
            (SECRET, BASE + "?x=1"),
            (SECRET, "/download"),
        ],
    )
    def test_signer_settings_are_checked(self, secret: bytes, base: str) -> None:
        """Short secrets and endpoints that are not plain http(s) URLs are refused."""
        with pytest.raises(ConfigurationError):
            LinkSigner(secret, base)

    def test_naive_now_is_refused(self, local: Target) -> None:
        """A naive time is ambiguous and refused."""
        with pytest.raises(ConfigurationError, match="aware"):
            presign(local, "a", signer=SIGNER, now=datetime(2026, 1, 1))


class TestSecrecy:
    def test_url_is_hidden_from_repr_and_str(self) -> None:
        """Neither repr nor str of a link shows the URL or its signature."""
        link = presign(_s3_offline(), "a.pdf")
        signature = parse_qs(urlsplit(link.url).query)["X-Amz-Signature"][0]
        for text in (repr(link), str(link), f"{link}", repr([link])):
            assert link.url not in text
            assert signature not in text
            assert "X-Amz" not in text

    def test_signer_secret_is_hidden(self) -> None:
        """The HMAC secret is not in the signer's repr."""
        assert "kkkk" not in repr(SIGNER)

    def test_links_are_not_logged(self, local: Target, caplog: pytest.LogCaptureFixture) -> None:
        """Signing and verifying log nothing that contains the URL or signature."""
        now = _current()
        caplog.set_level(logging.DEBUG)
        link = presign(local, "contracts/4711.pdf", signer=SIGNER, now=now)
        verify_link(link.url, SIGNER, now=now)
        s3_link = presign(_s3_offline(), "a.pdf")
        for record in caplog.records:
            message = record.getMessage()
            assert link.url.rsplit("=", 1)[1] not in message
            assert s3_link.url not in message
            assert "X-Amz-Signature" not in message

    def test_refusal_texts_do_not_echo_the_link(self, local: Target) -> None:
        """A refused link's error text holds neither the URL nor its signature."""
        now = _current()
        link = presign(local, "contracts/4711.pdf", signer=SIGNER, now=now)
        with pytest.raises(IntegrityError) as info:
            verify_link(link.url, SIGNER, now=now + timedelta(hours=2))
        assert str(info.value) == "signed link refused"
        assert link.url.rsplit("=", 1)[1] not in repr(info.value)

    def test_signed_link_is_frozen(self) -> None:
        """A link is an immutable value."""
        link = presign(_s3_offline(), "a.pdf")
        with pytest.raises(AttributeError):
            link.url = "x"  # type: ignore[misc]
        assert isinstance(link, SignedLink)


def test_local_targets_are_never_public(local: Target) -> None:
    """A local folder has no endpoint of its own; the check says the promise holds."""
    check = check_not_public(local)
    assert check.kept
    assert check.object_status is None


def test_unreachable_endpoint_is_an_error_not_a_pass() -> None:
    """If the endpoint does not answer, the public check raises instead of reporting a kept promise."""
    from ctfy_vault.exceptions import TargetUnreachableError

    with pytest.raises(TargetUnreachableError) as info:
        check_not_public(_s3_offline(), "a.pdf")
    assert "X-Amz" not in str(info.value)


def _mint(expiry: int, key: str = "a.pdf") -> str:
    """A local link with a valid MAC for any expiry, as another signer (or an older one) makes."""
    signed_part = f"{BASE}?k={key}&e={expiry}"
    mac = hmac.new(SECRET, b"ctfy-vault link v1\n" + signed_part.encode(), hashlib.sha256)
    return f"{signed_part}&s={mac.hexdigest()}"


def _unix(moment: datetime) -> int:
    return floor_seconds(moment - EPOCH)


def _check_refusal(err: Exception) -> None:
    """A refusal is a ConfigurationError naming the problem, with no secret or URL in it."""
    assert isinstance(err, ConfigurationError)
    assert isinstance(err, ValueError)
    text = str(err)
    assert text
    assert BASE not in text
    assert SECRET.decode() not in text


class TestNoLinkOutlivesTheCap:
    """Whatever the arguments, no accepted call yields a link valid past one hour from now."""

    @given(ttl=durations(), when=times(optional=True))
    @settings(max_examples=500, deadline=None)
    def test_local_presign(self, ttl: DurationArg, when: TimeArg) -> None:
        """Any ttl and now: a clear error, or an HMAC link from now to now+ttl within the cap."""
        target = Target.from_url("memory://links/cap")
        before = datetime.now(UTC)
        now, instant = when.build(before)
        try:
            link = presign(target, "a.pdf", ttl=ttl.value, now=now, signer=SIGNER)  # type: ignore[arg-type]
        except ConfigurationError as err:
            _check_refusal(err)
            assert must_accept(ttl, when, instant, before, datetime.now(UTC)) is not True
            return
        after = datetime.now(UTC)
        assert must_accept(ttl, when, instant, before, after) is not False
        assert ttl.stored is not None
        expiry = hmac_expiry(link.url)
        assert expiry == link.expires_at
        start = expiry - timedelta(seconds=floor_seconds(ttl.stored))
        check_window(start, expiry, ttl=ttl, instant=instant, before=before, after=after)
        if expiry > after:
            assert verify_link(link.url, SIGNER, now=after).expires_at == expiry
        else:
            with pytest.raises(IntegrityError):
                verify_link(link.url, SIGNER, now=after)

    @given(ttl=durations(), when=times(optional=True))
    @settings(max_examples=300, deadline=None)
    def test_s3_presign(self, ttl: DurationArg, when: TimeArg) -> None:
        """Any ttl: a clear error, or X-Amz-Date on the real clock and X-Amz-Expires = ttl <= 1 h."""
        before = datetime.now(UTC)
        now, instant = when.build(before)
        try:
            link = presign(_shared_s3_offline(), "a.pdf", ttl=ttl.value, now=now)  # type: ignore[arg-type]
        except ConfigurationError as err:
            _check_refusal(err)
            assert when.kind != "none" or must_accept(ttl, when, None, before, before) is False
            return
        after = datetime.now(UTC)
        assert when.kind == "none"
        assert must_accept(ttl, when, instant, before, after) is True
        start, end = sigv4_window(link.url)
        check_window(start, end, ttl=ttl, instant=None, before=before, after=after)
        assert end <= link.expires_at <= after + MAX_TTL

    @given(expires_at=times(optional=False))
    @settings(max_examples=400, deadline=None)
    def test_signer_sign(self, expires_at: TimeArg) -> None:
        """LinkSigner.sign signs the stored expiry, and only one at most an hour from the clock."""
        before = datetime.now(UTC)
        value, instant = expires_at.build(before)
        try:
            url = SIGNER.sign("a.pdf", expires_at=value)  # type: ignore[arg-type]
        except ConfigurationError as err:
            _check_refusal(err)
            assert instant is None or instant > before + MAX_TTL
            return
        after = datetime.now(UTC)
        assert instant is not None
        assert instant <= after + MAX_TTL
        expiry = hmac_expiry_seconds(url)  # may lie before year 1: a link dead long ago
        assert expiry == _unix(instant)
        assert expiry <= _unix(after + MAX_TTL)
        if expiry > _unix(after):
            granted = verify_link(url, SIGNER, now=after)
            assert granted.expires_at == EPOCH + timedelta(seconds=expiry)
        else:
            with pytest.raises(IntegrityError):
                verify_link(url, SIGNER, now=after)

    @given(
        offset=st.one_of(
            st.integers(min_value=-(10**11), max_value=10**11),
            st.integers(min_value=-10, max_value=3700),
            st.sampled_from([0, 1, 3600, 3600 + 30, 3600 + 31, 10**9]),
        )
    )
    @settings(max_examples=300, deadline=None)
    def test_verifiers_refuse_links_expiring_past_the_cap(self, offset: int) -> None:
        """A correctly signed link expiring over 1 h + CLOCK_SKEW after the verifier's clock is refused."""
        now = _current()
        url = _mint(_unix(now) + offset)
        live = 0 < offset <= floor_seconds(MAX_TTL + CLOCK_SKEW)
        verifiers: list[Callable[[], VerifiedLink]] = [
            partial(verify_link, url, SIGNER, now=now),
            partial(SIGNER.verify, url, now=now),
        ]
        for verify in verifiers:
            if live:
                assert verify().expires_at == now + timedelta(seconds=offset)
            else:
                with pytest.raises(IntegrityError, match=r"^signed link refused$"):
                    verify()

    @given(cap=durations(), ttl=durations())
    @settings(max_examples=300, deadline=None)
    def test_policy_cap_is_read_from_its_stored_value(
        self, cap: DurationArg, ttl: DurationArg
    ) -> None:
        """A policy's cap is the duration it stores, 1 s to 1 h; a link never outlives it."""
        try:
            policy = LinkPolicy(max_ttl=cap.value)
        except ConfigurationError as err:
            _check_refusal(err)
            assert cap.stored is None or not SECOND <= cap.stored <= MAX_TTL
            return
        assert cap.stored is not None
        assert SECOND <= cap.stored <= MAX_TTL
        assert type(policy.max_ttl) is timedelta
        assert policy.max_ttl == cap.stored
        before = datetime.now(UTC)
        target = Target.from_url("memory://links/policy-cap")
        try:
            link = presign(target, "a", ttl=ttl.value, policy=policy, signer=SIGNER)  # type: ignore[arg-type]
        except ConfigurationError as err:
            _check_refusal(err)
            assert ttl.stored is None or not SECOND <= ttl.stored <= cap.stored
            return
        after = datetime.now(UTC)
        assert ttl.stored is not None
        assert SECOND <= ttl.stored <= cap.stored
        expiry = hmac_expiry(link.url)
        assert (
            before.replace(microsecond=0) + timedelta(seconds=floor_seconds(ttl.stored)) <= expiry
        )
        assert expiry <= after + cap.stored

    def test_future_now_is_refused(self) -> None:
        """A now ahead of the system clock (a link valid until a future date) is refused."""
        target = Target.from_url("memory://links/future")
        for ahead in (timedelta(seconds=5), timedelta(days=365)):
            with pytest.raises(ConfigurationError, match="ahead of the system clock"):
                presign(target, "a", ttl=MAX_TTL, now=_current() + ahead, signer=SIGNER)

    def test_stale_now_is_refused(self) -> None:
        """A now more than CLOCK_SKEW behind the system clock is refused, a fresh one is not."""
        target = Target.from_url("memory://links/stale")
        link = presign(target, "a", now=_current() - CLOCK_SKEW + SECOND, signer=SIGNER)
        assert link.expires_at > datetime.now(UTC)
        with pytest.raises(ConfigurationError, match="behind the system clock"):
            presign(target, "a", now=_current() - CLOCK_SKEW - SECOND, signer=SIGNER)

    def test_sign_refuses_a_far_expiry(self) -> None:
        """LinkSigner.sign refuses an expiry more than one hour after the system clock."""
        with pytest.raises(ConfigurationError, match="at most 1:00:00"):
            SIGNER.sign("a.pdf", expires_at=datetime.now(UTC) + MAX_TTL + SECOND)
        with pytest.raises(ConfigurationError, match="at most 1:00:00"):
            SIGNER.sign("a.pdf", expires_at=datetime(2099, 1, 1, tzinfo=UTC))

    def test_verify_refuses_a_link_minted_for_years(self) -> None:
        """A link correctly signed for a year is refused, as is one just past cap + skew."""
        now = _current()
        for life in (timedelta(days=365), MAX_TTL + CLOCK_SKEW + SECOND):
            with pytest.raises(IntegrityError):
                verify_link(_mint(_unix(now + life)), SIGNER, now=now)
        assert verify_link(_mint(_unix(now + MAX_TTL)), SIGNER, now=now).key == "a.pdf"

    def test_lying_total_seconds_is_not_trusted(self) -> None:
        """A ttl storing 30 minutes whose total_seconds() claims ten years signs 30 minutes."""
        ttl = lying_duration(SecondsLie, timedelta(minutes=30), timedelta(days=3650))
        query = parse_qs(urlsplit(presign(_s3_offline(), "a.pdf", ttl=ttl).url).query)
        assert query["X-Amz-Expires"] == ["1800"]
        target = Target.from_url("memory://links/lie")
        before = datetime.now(UTC)
        link = presign(target, "a", ttl=ttl, signer=SIGNER)
        assert link.expires_at <= before + timedelta(minutes=30, seconds=1)
        assert hmac_expiry(link.url) == link.expires_at

    def test_lying_comparisons_are_not_trusted(self) -> None:
        """A ttl storing ten years that claims one minute everywhere is refused."""
        ttl = lying_duration(FullLie, timedelta(days=3650), timedelta(minutes=1))
        with pytest.raises(ConfigurationError, match="at most 1:00:00"):
            presign(_s3_offline(), "a.pdf", ttl=ttl)
        with pytest.raises(ConfigurationError, match="may not exceed"):
            LinkPolicy(max_ttl=ttl)

    def test_a_lax_policy_subclass_cannot_lift_the_cap(self) -> None:
        """A policy whose check_ttl answers more than an hour is refused: the cap is the product's."""

        class Lax(LinkPolicy):
            def check_ttl(self, ttl: timedelta) -> int:
                return 10**9

        with pytest.raises(ConfigurationError, match="at most 1:00:00"):
            presign(_s3_offline(), "a.pdf", policy=Lax())
        with pytest.raises(ConfigurationError, match="at most 1:00:00"):
            presign(Target.from_url("memory://links/lax"), "a", policy=Lax(), signer=SIGNER)

    @pytest.mark.parametrize("expires_in", [0, 3601, 10**9, True, 60.0, "60"])
    def test_backend_signing_has_its_own_cap(self, expires_in: object) -> None:
        """The storage signers (also used by the public-access probe) refuse lifetimes past 1 h."""
        with pytest.raises(ConfigurationError):
            _s3_offline().presign_url("a.pdf", expires_in=expires_in)  # type: ignore[arg-type]
        assert floor_seconds(MAX_TTL) == MAX_EXPIRES_IN

    @pytest.mark.parametrize(
        "now",
        [datetime(2026, 1, 1), "2026-01-01", 0, date(2026, 1, 1)],
    )
    def test_verifier_clock_must_be_an_aware_datetime(self, now: object) -> None:
        """A verifier's clock that is not an aware datetime is a configuration error."""
        url = _mint(_unix(_current()) + 60)
        with pytest.raises(ConfigurationError, match="aware datetime"):
            verify_link(url, SIGNER, now=now)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="aware datetime"):
            SIGNER.verify(url, now=now)  # type: ignore[arg-type]


class TestLinksAreReadOnly:
    @pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH", "get", ""])
    def test_signer_refuses_a_write_method(self, method: str) -> None:
        """`LinkSigner.sign` signs only GET and HEAD links, like every other signing path."""
        with pytest.raises(UnsupportedError, match="read-only"):
            SIGNER.sign("a.pdf", expires_at=_current() + timedelta(minutes=5), method=method)

    @pytest.mark.parametrize("method", ["PUT", "DELETE"])
    def test_verifiers_refuse_a_correctly_signed_write_link(self, method: str) -> None:
        """A write link with a valid MAC (another signer's, an older release's) is refused."""
        expiry = _unix(_current() + timedelta(minutes=5))
        signed_part = f"{BASE}?k=a.pdf&e={expiry}&m={method}"
        mac = hmac.new(SECRET, b"ctfy-vault link v1\n" + signed_part.encode(), hashlib.sha256)
        url = f"{signed_part}&s={mac.hexdigest()}"
        with pytest.raises(IntegrityError):
            SIGNER.verify(url, now=_current(), method=method)
        with pytest.raises(IntegrityError):
            verify_link(url, SIGNER, now=_current(), method=method)
