"""Source images: `POST/GET /v1/media` over a real socket, and `resolve_image` on real S3.

The API runs in-process under uvicorn on a free port, with two tenants: the dev key's and a
second one (`OTHER_KEY`), so one tenant's media is invisible to the other.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from api.main import create_app
from reelay import devstack
from reelay.media import InvalidMediaError, MediaTooLargeError, resolve_image, store_upload
from reelay.settings import Settings
from reelay.storage import s3_client
from reelay.tenants import Tenant, TenantDirectory
from tests.conftest import DEV_API_KEY
from tests.support import Receiver, Reply, serving_app

OTHER_KEY = "rl_test_other_tenant_key"
MAX_BYTES = 64 * 1024


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


class TwoTenants:
    """The real directory, plus a second tenant (a copy of the dev tenant) under OTHER_KEY."""

    def __init__(self, settings: Settings) -> None:
        self._real = TenantDirectory(settings)

    def authenticate(self, api_key: str) -> Tenant | None:
        if api_key == OTHER_KEY:
            dev = self._real.authenticate(DEV_API_KEY)
            return None if dev is None else dev.model_copy(update={"id": "other-tenant"})
        return self._real.authenticate(api_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def media_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"media_max_bytes": MAX_BYTES, "webhook_allow_hosts": ["127.0.0.1"]}
    )


@pytest.fixture
def api_url(media_settings: Settings) -> Iterator[str]:
    app = create_app(media_settings)
    app.state.tenants = TwoTenants(media_settings)
    with serving_app(app, devstack.free_port()) as url:
        yield url


def client_for(api_url: str, key: str = DEV_API_KEY) -> httpx.Client:
    return httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def upload(api: httpx.Client, data: bytes, content_type: str, name: str = "f") -> httpx.Response:
    return api.post("/v1/media", files={"file": (name, data, content_type)})


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_upload_stores_an_image_for_its_tenant_only(
    api_url: str, media_settings: Settings, fmt: str, content_type: str
) -> None:
    data = image_bytes(fmt)
    with client_for(api_url) as api, client_for(api_url, OTHER_KEY) as other:
        # The declared type is wrong on purpose: the bytes decide.
        created = upload(api, data, "application/octet-stream", "upload.bin")
        assert created.status_code == 201, created.text
        body = created.json()
        assert body == {
            "media_id": body["media_id"],
            "content_type": content_type,
            "size_bytes": len(data),
            "width": 64,
            "height": 48,
        }
        assert api.get(f"/v1/media/{body['media_id']}").json() == body
        missing = other.get(f"/v1/media/{body['media_id']}")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found"
    stored = s3_client(media_settings).get_object(
        media_settings.s3_bucket, f"media/{body['media_id']}"
    )
    try:
        assert stored.read() == data
        assert stored.headers["content-type"] == content_type
    finally:
        stored.close()
        stored.release_conn()


def gif() -> bytes:
    return image_bytes("GIF")


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (gif(), "image/gif", "file must be a PNG, JPEG or WebP image (got image/gif)"),
        (
            b"just some text",
            "text/plain",
            "file must be a PNG, JPEG or WebP image (got text/plain)",
        ),
        (b"", "image/png", "file is empty"),
    ],
)
def test_upload_refuses_what_is_not_a_supported_image(
    api_url: str, data: bytes, content_type: str, message: str
) -> None:
    with client_for(api_url) as api:
        response = upload(api, data, content_type)
    assert response.status_code == 400
    assert response.json() == {"error": {"type": "invalid_request", "message": message}}


def test_upload_refuses_a_truncated_image_and_a_missing_file(api_url: str) -> None:
    with client_for(api_url) as api:
        truncated = upload(api, image_bytes("PNG", (300, 300))[:-200], "image/png")
        missing = api.post("/v1/media", data={"other": "x"})
        anonymous = httpx.post(f"{api_url}/v1/media", files={"file": ("f", gif(), "image/gif")})
    assert truncated.status_code == 400
    assert truncated.json()["error"]["message"].startswith("file is not a readable image")
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "file is required"
    assert anonymous.status_code == 401


def test_upload_over_the_size_cap_is_413(api_url: str) -> None:
    oversize = image_bytes("PNG") + b"\0" * MAX_BYTES
    with client_for(api_url) as api:
        response = upload(api, oversize, "image/png")
    assert response.status_code == 413
    assert response.json()["error"] == {
        "type": "payload_too_large",
        "message": f"file is larger than the {MAX_BYTES} byte limit",
    }


def test_unknown_and_malformed_media_ids_are_404(api_url: str) -> None:
    with client_for(api_url) as api:
        for media_id in ("0b0e6a52-6f3b-4bb5-a1e4-3c1f3b0d9e11", "not-a-uuid", "..%2F..%2Fvideos"):
            assert api.get(f"/v1/media/{media_id}").status_code == 404


async def test_resolve_image_fetches_a_url_and_stores_it(media_settings: Settings) -> None:
    png = image_bytes("PNG")
    s3 = s3_client(media_settings)
    with Receiver([Reply(200, {"Content-Type": "image/png"}, png)]) as receiver:
        ref = await resolve_image(
            s3, media_settings, "tenant-a", image_url=receiver.url("/cat.png"), media_id=None
        )
    assert ref is not None and ref.content_type == "image/png" and ref.key.startswith("media/")
    stat = s3.stat_object(media_settings.s3_bucket, ref.key)
    assert stat.size == len(png)
    assert receiver.requests[0].method == "GET"


async def test_resolve_image_by_media_id_checks_the_tenant(media_settings: Settings) -> None:
    s3 = s3_client(media_settings)
    stored = await store_upload(s3, media_settings, "tenant-a", image_bytes("JPEG"), "image/jpeg")
    ref = await resolve_image(
        s3, media_settings, "tenant-a", image_url=None, media_id=stored.media_id
    )
    assert ref == stored.ref
    assert (
        await resolve_image(s3, media_settings, "tenant-a", image_url=None, media_id=None) is None
    )
    with pytest.raises(InvalidMediaError, match=rf"^promptImageId {stored.media_id} not found$"):
        await resolve_image(
            s3,
            media_settings,
            "tenant-b",
            image_url=None,
            media_id=stored.media_id,
            media_field="promptImageId",
        )
    with pytest.raises(InvalidMediaError, match=r"^give image_url or media_id, not both$"):
        await resolve_image(
            s3, media_settings, "tenant-a", image_url="https://x.test/a.png", media_id="m"
        )


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, {"Content-Type": "text/html"}, b"<html>"), "must serve a PNG, JPEG or WebP"),
        (Reply(302, {"Location": "/other.png"}), "redirects (HTTP 302); give the final URL"),
        (Reply(404), "answered HTTP 404"),
        (Reply(200, {"Content-Type": "image/png"}, b"not really a png"), "must be a PNG, JPEG"),
    ],
)
async def test_resolve_image_refuses_bad_answers(
    media_settings: Settings, reply: Reply, message: str
) -> None:
    s3 = s3_client(media_settings)
    with Receiver([reply]) as receiver, pytest.raises(InvalidMediaError) as refused:
        await resolve_image(
            s3, media_settings, "tenant-a", image_url=receiver.url("/i"), media_id=None
        )
    assert str(refused.value).startswith("image_url ")
    assert message in str(refused.value)


async def test_resolve_image_caps_the_download_without_content_length(
    media_settings: Settings,
) -> None:
    endless = Reply(
        200, {"Content-Type": "image/png"}, b"\0" * (MAX_BYTES * 2), content_length=False
    )
    too_large = pytest.raises(MediaTooLargeError, match=f"^imageUrl is larger than the {MAX_BYTES}")
    with Receiver([endless]) as receiver, too_large:
        await resolve_image(
            s3_client(media_settings),
            media_settings,
            "tenant-a",
            image_url=receiver.url("/big.png"),
            media_id=None,
            image_field="imageUrl",
        )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://10.0.0.1/a.png", "image_url must not point to a private or loopback address"),
        ("https://169.254.169.254/latest/meta-data", "image_url must not point to a link-local"),
        ("http://images.example.com/a.png", "image_url must use https"),
    ],
)
async def test_resolve_image_refuses_unsafe_urls(
    media_settings: Settings, url: str, message: str
) -> None:
    with pytest.raises(InvalidMediaError, match=f"^{message}"):
        await resolve_image(
            s3_client(media_settings), media_settings, "tenant-a", image_url=url, media_id=None
        )
