"""Signed links against servers that check signatures: Ceph RGW (SigV4) and Azurite (SAS)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, given, settings

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.links import CLOCK_SKEW, MAX_TTL, check_not_public, presign
from ctfy_vault.storage import Target
from tests.support.link_strategies import (
    DurationArg,
    TimeArg,
    check_window,
    durations,
    must_accept,
    sas_window,
    sigv4_window,
    times,
)
from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    blob_service_client,
    make_bucket,
    make_container,
    s3_client,
    s3_target,
)

DOC = "contracts/Überweisung 4711.pdf"
BODY = b"%PDF-1.7 contract 4711\n" * 100


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
            return int(response.status), response.read(), _lower(response.headers.items())
    except urllib.error.HTTPError as err:
        return int(err.code), b"", _lower(err.headers.items())


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def _tamper_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query[name] = [value]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def _wait_past(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.time()) + 1.2)


def _drop_query(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qs(parts.query, keep_blank_values=True).items() if k != name]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


# Signing is local, so the properties make no request; a few example tests below ask the servers.
_LIVE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.rgw
class TestRGW:
    @pytest.fixture(scope="class")
    @classmethod
    def target(cls, rgw_s3: S3Endpoint) -> Target:
        """A bucket on RGW holding one document under a prefix."""
        bucket = make_bucket(rgw_s3, f"links-{uuid.uuid4().hex[:16]}")
        target: Target = s3_target(rgw_s3, bucket, "tenant-7")
        target.write(DOC, BODY)
        return target

    def test_link_serves_exact_bytes_then_dies(self, target: Target) -> None:
        """A 2 s SigV4 link downloads the exact bytes, then RGW refuses it after expiry."""
        link = presign(target, DOC, ttl=timedelta(seconds=2))
        assert parse_qs(urlsplit(link.url).query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        status, body, _ = _get(link.url)
        assert (status, body) == (200, BODY)
        _wait_past(link.expires_at.timestamp())
        status, body, _ = _get(link.url)
        assert status == 403
        assert body == b""

    def test_download_name_reaches_the_client(self, target: Target) -> None:
        """RGW sends the signed RFC 6266/5987 Content-Disposition and Content-Type."""
        link = presign(target, DOC, filename="Überweisung 4711.pdf", content_type="application/pdf")
        status, body, headers = _get(link.url)
        assert (status, body) == (200, BODY)
        assert headers["content-disposition"] == (
            'attachment; filename="Uberweisung 4711.pdf"; '
            "filename*=UTF-8''%C3%9Cberweisung%204711.pdf"
        )
        assert headers["content-type"] == "application/pdf"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("X-Amz-Expires", "3599"),
            ("response-content-disposition", "inline"),
            ("X-Amz-Signature", "0" * 64),
        ],
    )
    def test_tampered_link_is_refused(self, target: Target, name: str, value: str) -> None:
        """Changing the expiry, a response header or the signature makes RGW refuse the link."""
        link = presign(target, DOC, filename="a.pdf")
        assert _get(link.url)[0] == 200
        assert _get(_tamper_query(link.url, name, value))[0] == 403

    def test_link_to_another_key_is_refused(self, target: Target) -> None:
        """A signature for one object does not open another one."""
        target.write("contracts/other.pdf", b"other")
        link = presign(target, DOC)
        parts = urlsplit(link.url)
        other = urlunsplit(parts._replace(path=parts.path.rsplit("/", 1)[0] + "/other.pdf"))
        assert _get(other)[0] == 403

    @_LIVE
    @given(ttl=durations(), when=times(optional=True))
    def test_no_link_outlives_the_cap(
        self, target: Target, ttl: DurationArg, when: TimeArg
    ) -> None:
        """Any ttl and now: a clear error, or X-Amz-Date on the real clock and a life <= 1 h."""
        before = datetime.now(UTC)
        now, instant = when.build(before)
        try:
            link = presign(target, DOC, ttl=ttl.value, now=now)  # type: ignore[arg-type]
        except ConfigurationError:
            assert when.kind != "none" or must_accept(ttl, when, None, before, before) is False
            return
        after = datetime.now(UTC)
        assert when.kind == "none"
        assert must_accept(ttl, when, instant, before, after) is True
        start, end = sigv4_window(link.url)
        check_window(start, end, ttl=ttl, instant=None, before=before, after=after)

    def test_moving_the_start_or_lengthening_is_refused(self, target: Target) -> None:
        """RGW refuses a link whose X-Amz-Date is moved later or whose X-Amz-Expires is raised."""
        link = presign(target, DOC, ttl=timedelta(minutes=5))
        assert _get(link.url)[0] == 200
        start, _end = sigv4_window(link.url)
        later = (start + timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ")
        assert _get(_tamper_query(link.url, "X-Amz-Date", later))[0] == 403
        assert _get(_tamper_query(link.url, "X-Amz-Expires", "604800"))[0] == 403

    def test_private_bucket_keeps_the_promise(self, target: Target) -> None:
        """Unsigned GET and listing are refused on a private bucket."""
        check = check_not_public(target, DOC)
        assert check.kept
        assert check.object_status == 403
        assert check.listing_status == 403

    def test_public_bucket_is_a_failed_promise(self, rgw_s3: S3Endpoint) -> None:
        """A public-read bucket and object are reported, with what anonymous readers got."""
        bucket = make_bucket(rgw_s3, f"public-{uuid.uuid4().hex[:16]}")
        target = Target.from_url(
            f"s3://{bucket}",
            endpoint_url=rgw_s3.endpoint_url,
            key=rgw_s3.key,
            secret=rgw_s3.secret,
            region=rgw_s3.region,
        )
        target.write("doc.pdf", BODY)
        client = s3_client(rgw_s3)
        client.put_bucket_acl(Bucket=bucket, ACL="public-read")
        client.put_object_acl(Bucket=bucket, Key="doc.pdf", ACL="public-read")
        check = check_not_public(target)
        assert not check.kept
        assert (check.object_status, check.listing_status) == (200, 200)
        assert len(check.problems) == 2


@pytest.mark.azurite
class TestAzurite:
    @pytest.fixture(scope="class")
    @classmethod
    def target(cls, azurite: AzureEndpoint) -> Target:
        """A container on Azurite holding one document under a prefix."""
        container = make_container(azurite, f"links-{uuid.uuid4().hex[:16]}")
        target = Target.from_url(
            f"az://{container}/tenant-7", connection_string=azurite.connection_string
        )
        target.write(DOC, BODY)
        return target

    def test_sas_serves_exact_bytes_then_dies(self, target: Target) -> None:
        """A 2 s read-only SAS downloads the exact bytes, then Azurite refuses it."""
        link = presign(target, DOC, ttl=timedelta(seconds=2), filename="Überweisung 4711.pdf")
        query = parse_qs(urlsplit(link.url).query)
        assert query["sp"] == ["r"]
        assert query["sr"] == ["b"]
        assert query["se"] != query["st"]
        status, body, headers = _get(link.url)
        assert (status, body) == (200, BODY)
        assert "filename*=UTF-8''%C3%9Cberweisung%204711.pdf" in headers["content-disposition"]
        _wait_past(link.expires_at.timestamp())
        assert _get(link.url)[0] == 403

    @pytest.mark.parametrize(
        ("name", "value"), [("sp", "rw"), ("se", "2099-01-01T00:00:00Z"), ("sig", "A" * 44)]
    )
    def test_tampered_sas_is_refused(self, target: Target, name: str, value: str) -> None:
        """Widening the permission, extending the expiry or changing the signature is refused."""
        link = presign(target, DOC)
        assert _get(link.url)[0] == 200
        assert _get(_tamper_query(link.url, name, value))[0] == 403

    def test_client_ip_is_signed_into_the_sas(self, target: Target) -> None:
        """The bound address is part of the SAS; removing or changing it breaks the signature."""
        link = presign(target, DOC, client_ip="127.0.0.1")
        assert parse_qs(urlsplit(link.url).query)["sip"] == ["127.0.0.1"]
        assert _get(link.url)[0] == 200
        assert _get(_tamper_query(link.url, "sip", "0.0.0.0-255.255.255.255"))[0] == 403

    @_LIVE
    @given(ttl=durations(), when=times(optional=True))
    def test_no_sas_outlives_the_cap(self, target: Target, ttl: DurationArg, when: TimeArg) -> None:
        """Any ttl and now: a clear error, or a SAS from now (st) to now+ttl (se) within 1 h."""
        before = datetime.now(UTC)
        now, instant = when.build(before)
        try:
            link = presign(target, DOC, ttl=ttl.value, now=now)  # type: ignore[arg-type]
        except ConfigurationError:
            assert must_accept(ttl, when, instant, before, datetime.now(UTC)) is not True
            return
        after = datetime.now(UTC)
        assert must_accept(ttl, when, instant, before, after) is not False
        start, end = sas_window(link.url)
        assert start is not None
        assert end == link.expires_at
        check_window(start, end, ttl=ttl, instant=instant, before=before, after=after)

    def test_sas_start_is_signed(self, target: Target) -> None:
        """The SAS carries st; Azurite refuses it with st dropped or moved earlier."""
        link = presign(target, DOC)
        start, _end = sas_window(link.url)
        assert start is not None
        assert start <= datetime.now(UTC)
        assert _get(link.url)[0] == 200
        earlier = (start - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert _get(_tamper_query(link.url, "st", earlier))[0] == 403
        assert _get(_drop_query(link.url, "st"))[0] == 403

    def test_sas_from_a_stale_now_dies_at_now_plus_ttl(self, target: Target) -> None:
        """A SAS signed with a now 25 s old lives until now+ttl, not the real clock plus ttl."""
        now = datetime.now(UTC) - (CLOCK_SKEW - timedelta(seconds=5))
        link = presign(target, DOC, ttl=CLOCK_SKEW - timedelta(seconds=2), now=now)
        assert sas_window(link.url) == (
            now.replace(microsecond=0),
            now.replace(microsecond=0) + CLOCK_SKEW - timedelta(seconds=2),
        )
        assert _get(link.url)[0] == 200
        _wait_past(link.expires_at.timestamp())
        assert _get(link.url)[0] == 403

    def test_a_future_now_is_refused_before_signing(self, target: Target) -> None:
        """A now ahead of the clock would make a SAS valid until then plus an hour: refused."""
        with pytest.raises(ConfigurationError, match="ahead of the system clock"):
            presign(target, DOC, ttl=MAX_TTL, now=datetime.now(UTC) + timedelta(days=365))

    def test_private_container_keeps_the_promise(self, target: Target) -> None:
        """Unsigned GET and listing are refused on a private container."""
        check = check_not_public(target, DOC)
        assert check.kept
        assert check.object_status is not None
        assert check.object_status >= 400

    def test_public_container_is_a_failed_promise(self, azurite: AzureEndpoint) -> None:
        """A container with public access is reported as a failed promise."""
        container = make_container(azurite, f"public-{uuid.uuid4().hex[:16]}")
        target = Target.from_url(f"az://{container}", connection_string=azurite.connection_string)
        target.write("doc.pdf", BODY)
        client = blob_service_client(azurite).get_container_client(container)
        client.set_container_access_policy({}, public_access="container")
        check = check_not_public(target)
        assert not check.kept
        assert check.object_status == 200
