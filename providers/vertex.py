"""Google Veo on Vertex AI, as `google-genai` sends it in Vertex AI mode (checked in
tests/unit/test_sdk_contract.py against 2.34; its 3.x sends the same).

`POST /v1/projects/{p}/locations/{region}/publishers/google/models/{model}:predictLongRunning`
on the regional endpoint starts an operation, whose name is the task handle;
`{model}:fetchPredictOperation` with `{"operationName"}` reads it; `{name}:cancel` asks
to stop it. Calls carry an OAuth token of the deployment's service account (google-auth,
refreshed in a thread, never on the event loop). The video comes back inline
(`bytesBase64Encoded`, handed to the store step as a `data:` URL that never enters
workflow history) or, when the deployment names a bucket, as a `gs://` object downloaded
through Cloud Storage's JSON API with the same token.

Unlike the Gemini API, Vertex AI takes `generateAudio` (Veo 3 is silent unless asked) and
`seed`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from google.auth import exceptions as auth_errors
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2 import service_account

from providers.base import ProviderTaskStatus, Resume, SourceImage, TaskState
from providers.errors import (
    InvalidProviderRequestError,
    ProviderUnavailableError,
    RetryableProviderError,
)
from providers.http import ProviderHttp
from providers.veo import (
    GoogleAdapter,
    operation_state,
    predict_body,
    veo_family,
    without_video,
)
from reelay.jobs import JobSpec, Route

API_VERSION = "v1"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GCS_BASE_URL = "https://storage.googleapis.com"
VIDEO_TYPE = "video/mp4"
_DATA_PREFIX = "data:"


def base_url(region: str) -> str:
    """The regional endpoint (`global` has none of its own)."""
    host = "aiplatform.googleapis.com"
    return f"https://{host if region == 'global' else f'{region}-{host}'}/{API_VERSION}"


def service_account_credentials(path: Path) -> service_account.Credentials:
    """A service account's key file; its `token_uri` is where tokens are minted."""
    credentials: service_account.Credentials = (
        service_account.Credentials.from_service_account_file(str(path), scopes=[SCOPE])
    )
    return credentials


class AccessToken(httpx.Auth):
    """Bearer tokens of google-auth credentials, refreshed (in a thread) when they expire."""

    def __init__(self, credentials: Credentials, provider: str) -> None:
        self._credentials = credentials
        self._provider = provider
        self._transport = AuthRequest()
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if not self._credentials.valid:
            async with self._lock:
                if not self._credentials.valid:
                    await asyncio.to_thread(self._refresh)
        return str(self._credentials.token)

    def _refresh(self) -> None:
        try:
            self._credentials.refresh(self._transport)
        except auth_errors.TransportError as exc:
            raise ProviderUnavailableError(
                f"{self._provider} token endpoint unreachable: {exc}", provider=self._provider
            ) from exc
        except auth_errors.GoogleAuthError as exc:
            # A refused key is an operator problem, not the job's: keep retrying until fixed.
            error = RetryableProviderError if exc.retryable else ProviderUnavailableError
            raise error(f"{self._provider} token refused: {exc}", provider=self._provider) from exc

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        if project := getattr(self._credentials, "quota_project_id", None):
            request.headers["x-goog-user-project"] = project
        yield request

    def close(self) -> None:
        self._transport.session.close()


def vertex_body(
    job: JobSpec, route: Route, image: SourceImage | None, output_uri: str | None
) -> dict[str, Any]:
    body = predict_body(job, route, image, provider=VertexAdapter.name)
    parameters = body["parameters"]
    if veo_family(route).audio:
        parameters["generateAudio"] = job.audio
    if job.seed is not None:
        parameters["seed"] = job.seed
    if output_uri:
        parameters["storageUri"] = output_uri
    return body


def video_input(output_url: str) -> dict[str, str]:
    """An earlier output as the `video` to extend: its `gs://` object or its bytes."""
    if output_url.startswith(_DATA_PREFIX):
        return {"bytesBase64Encoded": output_url.partition(",")[2], "mimeType": VIDEO_TYPE}
    return {"gcsUri": output_url, "mimeType": VIDEO_TYPE}


def parse_vertex_operation(body: dict[str, Any]) -> ProviderTaskStatus:
    """Translate a `fetchPredictOperation` answer (`response.videos[]`)."""
    if (state := operation_state(body)) is not None:
        return state
    result = body.get("response")
    result = result if isinstance(result, dict) else {}
    videos = result.get("videos") or []
    video = videos[0] if isinstance(videos, list) and videos else None
    video = video if isinstance(video, dict) else {}
    url: str | None = None
    if isinstance(uri := video.get("gcsUri"), str) and uri.startswith("gs://"):
        url = uri
    elif isinstance(data := video.get("bytesBase64Encoded"), str) and data:
        url = f"{_DATA_PREFIX}{video.get('mimeType') or VIDEO_TYPE};base64,{data}"
    if url is None:
        return without_video(result)
    return ProviderTaskStatus(state=TaskState.SUCCEEDED, progress=1.0, output_url=url)


class VertexAdapter(GoogleAdapter):
    name = "vertex"

    def __init__(
        self,
        base_url: str,
        *,
        project: str,
        location: str,
        credentials: Credentials,
        gcs_base_url: str = GCS_BASE_URL,
        output_uri: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth = AccessToken(credentials, self.name)
        self._http = ProviderHttp(
            self.name, base_url, {}, timeout=timeout, transport=transport, auth=self._auth
        )
        self._models = f"/projects/{project}/locations/{location}/publishers/google/models"
        self._gcs = gcs_base_url.rstrip("/")
        self._output_uri = output_uri

    async def aclose(self) -> None:
        await super().aclose()
        self._auth.close()

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        body = vertex_body(job, route, image, self._output_uri)
        if job.continue_from is not None:
            # Video extension: Veo generates what follows the earlier output.
            earlier = await self.poll(route, job.continue_from)
            if earlier.output_url is None:
                raise InvalidProviderRequestError(
                    "the video to extend is not available", provider=self.name
                )
            body["instances"][0]["video"] = video_input(earlier.output_url)
        return await self._start(f"{self._models}/{route.upstream_model}:predictLongRunning", body)

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        # As google-genai does: the operation's own model resource, not the route's.
        resource = task_id.rpartition("/operations/")[0]
        response = await self._request(
            "POST", f"/{resource}:fetchPredictOperation", json={"operationName": task_id}
        )
        return parse_vertex_operation(self._http.json_object(response))

    def download(
        self, url: str, *, resume: Resume | None = None
    ) -> AbstractAsyncContextManager[httpx.Response]:
        if url.startswith(_DATA_PREFIX):
            return _inline(url)  # whole again: a 200
        bucket, _, name = url.removeprefix("gs://").partition("/")
        media = f"{self._gcs}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        return self._http.download(f"{media}?alt=media", auth=self._auth, resume=resume)


@asynccontextmanager
async def _inline(url: str) -> AsyncIterator[httpx.Response]:
    """An inline video as a response, read like any download."""
    header, _, data = url.partition(",")
    try:
        content = base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise RetryableProviderError(
            "vertex answered a video that is not base64", provider=VertexAdapter.name
        ) from exc
    media_type = header.removeprefix(_DATA_PREFIX).partition(";")[0] or VIDEO_TYPE
    yield httpx.Response(200, content=content, headers={"content-type": media_type})
