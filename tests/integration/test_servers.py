import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    blob_service_client,
    make_bucket,
    make_container,
    s3_client,
)


def _name(prefix: str) -> str:
    # Servers are shared by the whole session (and by CI runs), so every test uses fresh names.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _put_get(endpoint: S3Endpoint) -> None:
    bucket = make_bucket(endpoint, _name("servers"))
    client = s3_client(endpoint)
    client.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello")
    got = client.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == b"hello"


def _put_twice_create_only(endpoint: S3Endpoint) -> ClientError:
    bucket = make_bucket(endpoint, _name("servers"))
    client = s3_client(endpoint)
    client.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert client.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"
    return caught.value


def _status(error: ClientError) -> Any:
    return error.response["ResponseMetadata"]["HTTPStatusCode"]


def _with_wrong_secret(endpoint: S3Endpoint) -> S3Endpoint:
    return S3Endpoint(
        endpoint_url=endpoint.endpoint_url,
        key=endpoint.key,
        secret=endpoint.secret + "-wrong",
        region=endpoint.region,
    )


def test_moto_put_get(moto_s3: S3Endpoint) -> None:
    """Moto stores an object and returns the same bytes."""
    _put_get(moto_s3)


def test_moto_does_not_check_signatures(moto_s3: S3Endpoint) -> None:
    """Moto accepts a request signed with a wrong secret, so it can never test signatures."""
    bucket = make_bucket(moto_s3, _name("servers"))
    s3_client(_with_wrong_secret(moto_s3)).put_object(Bucket=bucket, Key="k", Body=b"x")


def test_moto_if_none_match(moto_s3: S3Endpoint) -> None:
    """Moto refuses a second IfNoneMatch='*' put of the same key with 412."""
    assert _status(_put_twice_create_only(moto_s3)) == 412


@pytest.mark.rgw
def test_rgw_put_get(rgw_s3: S3Endpoint) -> None:
    """RGW stores an object and returns the same bytes."""
    _put_get(rgw_s3)


@pytest.mark.rgw
def test_rgw_rejects_wrong_secret(rgw_s3: S3Endpoint) -> None:
    """RGW refuses a request signed with a wrong secret (SignatureDoesNotMatch, 403)."""
    bucket = make_bucket(rgw_s3, _name("servers"))
    with pytest.raises(ClientError) as caught:
        s3_client(_with_wrong_secret(rgw_s3)).put_object(Bucket=bucket, Key="k", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert _status(caught.value) == 403


@pytest.mark.rgw
def test_rgw_if_none_match(rgw_s3: S3Endpoint) -> None:
    """RGW refuses a second IfNoneMatch='*' put of the same key with 412 and keeps the first."""
    assert _status(_put_twice_create_only(rgw_s3)) == 412


@pytest.mark.azurite
def test_azurite_create_only(azurite: AzureEndpoint) -> None:
    """Azurite refuses a second overwrite=False upload of the same blob and keeps the first."""
    from azure.core.exceptions import ResourceExistsError

    container = make_container(azurite, _name("servers"))
    blob = blob_service_client(azurite).get_blob_client(container, "once")
    blob.upload_blob(b"first", overwrite=False)
    with pytest.raises(ResourceExistsError):
        blob.upload_blob(b"second", overwrite=False)
    assert blob.download_blob().readall() == b"first"
