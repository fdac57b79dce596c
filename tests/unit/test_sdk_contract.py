"""The adapters against the providers' official SDKs (the `contract` extra), no server.

For every adapter and every request shape it builds (text, image, continuation, callback,
each model family), the adapter's request and the SDK's request for the same call are
captured on one `httpx.MockTransport` and compared: method, path, query, auth and version
headers, JSON body. Bodies are also checked against the SDK's typed params (field names,
required fields, `Literal` values). fal and Replicate do not type model inputs: their bodies
are checked against the published input schemas kept in `providers/schemas/`. Finally every
catalog route x duration x ratio x resolution it offers is checked the same way.
"""

from __future__ import annotations

import base64
import itertools
import json
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, get_args, get_origin

import fal_client
import fal_client.client
import httpx
import jsonschema
import lumaai
import pytest
import replicate
import runwayml
from google import genai
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials as OAuthCredentials
from lumaai.types import GenerationListResponse, generation_create_params
from pydantic import TypeAdapter, ValidationError
from runwayml.types import image_to_video_create_params, text_to_video_create_params

from providers.base import FailureKind, SourceImage, TaskState
from providers.catalog import MODELS, ModelSpec, RouteSpec, route_family
from providers.errors import ProviderError, ProviderUnavailableError, RetryableProviderError
from providers.fal import FalAdapter, fal_input
from providers.families import Family
from providers.http import raise_for_status
from providers.lookup import unsigned
from providers.luma import LIST_LIMIT as LUMA_LIST_LIMIT
from providers.luma import LumaAdapter, generation_body
from providers.replicate import ReplicateAdapter, replicate_input
from providers.runway import RunwayAdapter, task_request
from providers.veo import VeoAdapter, predict_body
from providers.vertex import VertexAdapter, vertex_body
from reelay.jobs import JobSpec, Route

PAYLOADS = resources.files("tests").joinpath("payloads")
KEY = "sk-test-123"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HTTPS_IMAGE = SourceImage(url="https://bucket.test/in.png", content_type="image/png", data=PNG)
HTTP_IMAGE = SourceImage(url="http://127.0.0.1:8333/b/in.png", content_type="image/png", data=PNG)
CALLBACK = "https://gw.test/v1/providers/x/callbacks/job_vid_1?token=t"
SERVED = [m for m in MODELS if m.routes and not m.retired_on and not m.unavailable_reason]


def payload(provider: str, name: str) -> Any:
    return json.loads(PAYLOADS.joinpath(f"{provider}.json").read_text())[name]


def schemas(adapter: str) -> dict[str, Any]:
    text = resources.files("providers").joinpath(f"schemas/{adapter}.json").read_text()
    models: dict[str, Any] = json.loads(text)["models"]
    return models


FAL_SCHEMAS = schemas("fal")
REPLICATE_SCHEMAS = schemas("replicate")


def job(**fields: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": "job_vid_1",
        "tenant_id": "t",
        "request_id": "r",
        "model": "m",
        "requested_model": "m",
        "routes": [Route(adapter="x", upstream_model="y")],
        "prompt": "a red fox in the snow",
        "duration_seconds": 5,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "price_micro_usd_per_second": 1,
        "created_at": datetime.now(UTC),
        "deadline_seconds": 60,
        **fields,
    }
    return JobSpec.model_validate(values)


class Recorder:
    """One mock transport for both clients: records every request, answers by `answer`."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.seen: list[httpx.Request] = []
        self.answer = answer
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answer(request)

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == "POST"]


def same_request(ours: httpx.Request, sdk: httpx.Request, headers: tuple[str, ...]) -> None:
    assert (ours.method, ours.url.host, ours.url.path) == (sdk.method, sdk.url.host, sdk.url.path)
    assert dict(ours.url.params) == dict(sdk.url.params)
    for name in headers:
        assert ours.headers.get(name) == sdk.headers.get(name), name
    assert json.loads(ours.content) == json.loads(sdk.content)


# --- typed params (runwayml, lumaai TypedDicts) ---------------------------------------------


@dataclass(frozen=True)
class TypedField:
    name: str
    type: Any
    required: bool


def typed_fields(params: type) -> dict[str, TypedField]:
    """A TypedDict's fields by wire name (Stainless SDKs alias fields with PropertyInfo)."""
    hints = typing.get_type_hints(params, include_extras=True)
    required = getattr(params, "__required_keys__", frozenset())
    fields: dict[str, TypedField] = {}
    for name, hint in hints.items():
        wire, inner = name, hint
        while True:
            origin = get_origin(inner)
            if origin is Annotated:
                for meta in inner.__metadata__:
                    wire = getattr(meta, "alias", None) or wire
                inner = get_args(inner)[0]
            elif origin in (typing.Required, typing.NotRequired):
                inner = get_args(inner)[0]
            else:
                break
        fields[wire] = TypedField(name=name, type=inner, required=name in required)
    return fields


def check_typed(body: dict[str, Any], params: type) -> None:
    fields = typed_fields(params)
    unknown = set(body) - set(fields)
    assert not unknown, f"{params.__name__} has no field {sorted(unknown)}"
    missing = {wire for wire, f in fields.items() if f.required} - set(body)
    assert not missing, f"{params.__name__} requires {sorted(missing)}"
    for wire, value in body.items():
        try:
            TypeAdapter(fields[wire].type).validate_python(value, strict=True)
        except ValidationError as exc:
            pytest.fail(f"{params.__name__}.{wire} = {value!r}: {exc.errors()[0]['msg']}")


def runway_params(model: str, *, with_image: bool) -> type:
    """The runwayml TypedDict of one model's create call (`model: Literal[model]`)."""
    module = image_to_video_create_params if with_image else text_to_video_create_params
    for value in vars(module).values():
        if isinstance(value, type) and hasattr(value, "__required_keys__"):
            hint = typed_fields(value).get("model")
            if hint is not None and get_args(hint.type) == (model,):
                return value
    raise AssertionError(f"runwayml {runwayml.__version__} has no {model} create params")


# --- request shapes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One request an adapter builds: a route of a catalog model, with its inputs."""

    model: ModelSpec
    route: RouteSpec
    resolution: str
    ratio: str
    seconds: int
    with_image: bool
    audio: bool = False
    extras: bool = False  # seed, negative prompt, prompt enhancement
    continued: bool = False  # a chain's further segment (extend / keyframe)

    @property
    def id(self) -> str:
        parts = [self.route.upstream_for(with_image=self.with_image), self.resolution]
        parts += [self.ratio, f"{self.seconds}s", "image" if self.with_image else "text"]
        parts += ["audio"] * self.audio + ["extras"] * self.extras + ["cont"] * self.continued
        return "-".join(parts)

    def job_and_route(self) -> tuple[JobSpec, Route]:
        route = self.route.as_route(self.seconds, with_image=self.with_image)
        fields: dict[str, Any] = {
            "duration_seconds": self.seconds,
            "resolution": self.resolution,
            "aspect_ratio": self.ratio,
            "audio": self.audio,
            "routes": [route],
        }
        if self.extras:
            fields |= {"seed": 42, "negative_prompt": "blur, text", "enhance_prompt": True}
        if self.continued:
            fields["continue_from"] = "earlier-task"
        return job(**fields), route


def offered(route: RouteSpec) -> Iterator[tuple[str, str, int, bool]]:
    """Every (resolution, ratio, clip length, image) one route of the catalog offers."""
    for resolution, ratio, with_image in itertools.product(
        route.resolutions, route.aspect_ratios, (False, True)
    ):
        for seconds in route.lengths(resolution):
            if route.fits(seconds, resolution, ratio, with_image=with_image, audio=False):
                yield resolution, ratio, seconds, with_image


def shapes() -> Iterator[Shape]:
    """Per route: text and image at its first offer, with audio and extras variants, and
    the continuation its chains use."""
    for model in SERVED:
        for route in model.routes:
            firsts: dict[bool, tuple[str, str, int]] = {}
            for resolution, ratio, seconds, with_image in offered(route):
                firsts.setdefault(with_image, (resolution, ratio, seconds))
            for with_image, (resolution, ratio, seconds) in firsts.items():
                base = Shape(model, route, resolution, ratio, seconds, with_image)
                yield base
                yield Shape(model, route, resolution, ratio, seconds, with_image, extras=True)
                if route.audio:
                    yield Shape(model, route, resolution, ratio, seconds, with_image, audio=True)
                if route.continues_by is not None and route.continues_by.value != "last_frame":
                    yield Shape(
                        model, route, resolution, ratio, seconds, with_image, continued=True
                    )


def unique(items: Iterator[Shape]) -> list[Shape]:
    return list({shape.id: shape for shape in items}.values())


ALL_SHAPES = unique(shapes())


def by_adapter(adapter: str) -> list[Any]:
    return [pytest.param(s, id=s.id) for s in ALL_SHAPES if s.route.adapter == adapter]


def family_of(route: Route) -> Family:
    family = route_family(route)
    assert family is not None
    return family


# --- Runway ---------------------------------------------------------------------------------


def expected_prompt_image(image: SourceImage) -> str:
    if image.url.startswith("https://"):
        return image.url
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def runway_cases() -> list[Any]:
    """Runway's shapes; image-to-video both from an HTTPS URL and from a plain-http bucket."""
    cases = []
    for case in by_adapter("runway"):
        (shape,) = case.values
        sources = [HTTPS_IMAGE, HTTP_IMAGE] if shape.with_image else [None]
        for source in sources:
            where = "" if source is None else "-" + source.url.split(":")[0]
            cases.append(pytest.param(shape, source, id=f"{shape.id}{where}"))
    return cases


@pytest.mark.parametrize(("shape", "image"), runway_cases())
async def test_runway_requests_match_the_sdk(shape: Shape, image: SourceImage | None) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={"id": "task-1"}))
    spec, route = shape.job_and_route()
    adapter = RunwayAdapter("https://runway.test", KEY, transport=recorder.transport)
    assert await adapter.submit(spec, route, image=image) == "task-1"

    family = family_of(route)
    ratio = family.frame(spec.aspect_ratio, spec.resolution, with_image=image is not None)
    call: dict[str, Any] = {
        "model": route.upstream_model,
        "prompt_text": spec.prompt,
        "ratio": ratio,
        "duration": route.clip_seconds or spec.duration_seconds,
    }
    if spec.seed is not None:
        call["seed"] = spec.seed
    if family.audio:
        call["audio"] = spec.audio
        if spec.negative_prompt:
            call["negative_prompt"] = spec.negative_prompt
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = runwayml.AsyncRunwayML(
            api_key=KEY, base_url="https://runway.test", http_client=http, max_retries=0
        )
        if image is None:
            created = await client.text_to_video.create(**call)
        else:
            created = await client.image_to_video.create(
                prompt_image=expected_prompt_image(image), **call
            )
    assert created.id == "task-1"
    ours, sdk = recorder.seen
    same_request(ours, sdk, ("authorization", "x-runway-version"))
    check_typed(
        json.loads(ours.content), runway_params(route.upstream_model, with_image=bool(image))
    )


# --- Luma -----------------------------------------------------------------------------------


@pytest.mark.parametrize("callback", [None, CALLBACK], ids=["poll", "callback"])
@pytest.mark.parametrize("shape", by_adapter("luma"))
async def test_luma_requests_match_the_sdk(shape: Shape, callback: str | None) -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json=payload("luma", "dreaming")))
    spec, route = shape.job_and_route()
    image = HTTPS_IMAGE if shape.with_image else None
    base = "https://luma.test/dream-machine/v1"
    adapter = LumaAdapter(base, KEY, transport=recorder.transport)
    await adapter.submit(spec, route, image=image, callback_url=callback)

    call: dict[str, Any] = {
        "model": route.upstream_model,
        "prompt": spec.prompt,
        "aspect_ratio": spec.aspect_ratio,
        "resolution": spec.resolution,
        "duration": f"{route.clip_seconds or spec.duration_seconds}s",
    }
    if spec.continue_from is not None:
        call["keyframes"] = {"frame0": {"type": "generation", "id": spec.continue_from}}
    elif image is not None:
        call["keyframes"] = {"frame0": {"type": "image", "url": image.url}}
    if callback:
        call["callback_url"] = callback
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = lumaai.AsyncLumaAI(auth_token=KEY, base_url=base, http_client=http, max_retries=0)
        generation = await client.generations.create(**call)
    assert generation.id == payload("luma", "dreaming")["id"]
    ours, sdk = recorder.seen
    same_request(ours, sdk, ("authorization",))
    check_typed(json.loads(ours.content), generation_create_params.GenerationCreateParams)


# --- Veo on the Gemini API ------------------------------------------------------------------

EARLIER_VIDEO = "https://g.test/v1beta/files/earlier:download?alt=media"


def gemini_answer(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":  # the earlier operation of an extension
        done = payload("gemini", "done")
        done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"] = (
            EARLIER_VIDEO
        )
        return httpx.Response(200, json=done)
    return httpx.Response(200, json=payload("gemini", "running"))


async def gemini_sdk_request(
    recorder: Recorder, spec: JobSpec, route: Route, image: SourceImage | None
) -> None:
    """The same call through google-genai 2.x on the Gemini Developer API."""
    family = family_of(route)
    config = genai_types.GenerateVideosConfig(
        number_of_videos=1,
        aspect_ratio=spec.aspect_ratio,
        duration_seconds=route.clip_seconds or spec.duration_seconds,
        resolution=spec.resolution if family.audio else None,
        negative_prompt=spec.negative_prompt,
        enhance_prompt=True if spec.enhance_prompt else None,
    )
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = genai.Client(
            api_key=KEY,
            http_options=genai_types.HttpOptions(
                base_url="https://g.test", api_version="v1beta", httpx_async_client=http
            ),
        )
        source = genai_types.GenerateVideosSource(
            prompt=spec.prompt,
            image=genai_types.Image(image_bytes=image.data, mime_type=image.content_type)
            if image
            else None,
            video=genai_types.Video(uri=EARLIER_VIDEO) if spec.continue_from else None,
        )
        operation = await client.aio.models.generate_videos(
            model=route.upstream_model, source=source, config=config
        )
    assert operation.name == payload("gemini", "running")["name"]


@pytest.mark.parametrize("shape", by_adapter("veo"))
async def test_veo_requests_match_the_sdk(shape: Shape) -> None:
    recorder = Recorder(gemini_answer)
    spec, route = shape.job_and_route()
    image = HTTPS_IMAGE if shape.with_image else None
    adapter = VeoAdapter("https://g.test/v1beta", KEY, transport=recorder.transport)
    await adapter.submit(spec, route, image=image)
    await gemini_sdk_request(recorder, spec, route, image)
    ours, sdk = recorder.posts()
    same_request(ours, sdk, ("x-goog-api-key",))


# --- Veo on Vertex AI -----------------------------------------------------------------------

VERTEX_BASE = "https://us-central1-aiplatform.googleapis.com"
VERTEX_PROJECT, VERTEX_REGION = "reelay-test", "us-central1"
VERTEX_TOKEN = "ya29.test-token"
VERTEX_OUTPUT = "gs://reelay-out/veo/"
EARLIER_BYTES = b"\x00\x00\x00\x20ftypisom earlier clip"


def vertex_token() -> OAuthCredentials:
    return OAuthCredentials(token=VERTEX_TOKEN)  # type: ignore[no-untyped-call]


def vertex_adapter(transport: httpx.AsyncBaseTransport, output: str | None) -> VertexAdapter:
    return VertexAdapter(
        f"{VERTEX_BASE}/v1",
        project=VERTEX_PROJECT,
        location=VERTEX_REGION,
        credentials=vertex_token(),
        output_uri=output,
        transport=transport,
    )


def vertex_client(http: httpx.AsyncClient) -> genai.Client:
    """google-genai in Vertex AI mode, on Vertex's GA version (the SDK defaults to v1beta1)."""
    return genai.Client(
        vertexai=True,
        project=VERTEX_PROJECT,
        location=VERTEX_REGION,
        credentials=vertex_token(),
        http_options=genai_types.HttpOptions(api_version="v1", httpx_async_client=http),
    )


def earlier_video(output: str | None) -> genai_types.Video:
    """The earlier output an extension continues: in Cloud Storage, or its bytes."""
    if output:
        return genai_types.Video(uri=f"{output}earlier/sample_0.mp4", mime_type="video/mp4")
    return genai_types.Video(video_bytes=EARLIER_BYTES, mime_type="video/mp4")


def vertex_answer(output: str | None) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":fetchPredictOperation"):  # the video to extend
            video = earlier_video(output)
            stored = {"gcsUri": video.uri, "mimeType": "video/mp4"}
            if video.video_bytes:
                inline = base64.b64encode(video.video_bytes).decode()
                stored = {"bytesBase64Encoded": inline, "mimeType": "video/mp4"}
            done = payload("vertex", "done_gcs") | {
                "name": json.loads(request.content)["operationName"]
            }
            done["response"] = done["response"] | {"videos": [stored]}
            return httpx.Response(200, json=done)
        return httpx.Response(200, json=payload("vertex", "running"))

    return answer


async def vertex_sdk_request(
    recorder: Recorder, spec: JobSpec, route: Route, image: SourceImage | None, output: str | None
) -> None:
    """The same call through google-genai in Vertex AI mode."""
    family = family_of(route)
    config = genai_types.GenerateVideosConfig(
        number_of_videos=1,
        aspect_ratio=spec.aspect_ratio,
        duration_seconds=route.clip_seconds or spec.duration_seconds,
        resolution=spec.resolution if family.audio else None,
        negative_prompt=spec.negative_prompt,
        enhance_prompt=True if spec.enhance_prompt else None,
        generate_audio=spec.audio if family.audio else None,
        seed=spec.seed,
        output_gcs_uri=output,
    )
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        source = genai_types.GenerateVideosSource(
            prompt=spec.prompt,
            image=genai_types.Image(image_bytes=image.data, mime_type=image.content_type)
            if image
            else None,
            video=earlier_video(output) if spec.continue_from else None,
        )
        operation = await vertex_client(http).aio.models.generate_videos(
            model=route.upstream_model, source=source, config=config
        )
    assert operation.name == payload("vertex", "running")["name"]


def starts(recorder: Recorder) -> list[httpx.Request]:
    return [r for r in recorder.seen if r.url.path.endswith(":predictLongRunning")]


@pytest.mark.parametrize("output", [None, VERTEX_OUTPUT], ids=["inline", "gcs"])
@pytest.mark.parametrize("shape", by_adapter("veo"))
async def test_vertex_requests_match_the_sdk(shape: Shape, output: str | None) -> None:
    recorder = Recorder(vertex_answer(output))
    spec, route = shape.job_and_route()
    if spec.continue_from:
        spec = spec.model_copy(update={"continue_from": payload("vertex", "done_gcs")["name"]})
    image = HTTPS_IMAGE if shape.with_image else None
    adapter = vertex_adapter(recorder.transport, output)
    assert await adapter.submit(spec, route, image=image) == payload("vertex", "running")["name"]
    await adapter.aclose()
    await vertex_sdk_request(recorder, spec, route, image, output)
    ours, sdk = starts(recorder)
    assert ours.url.host == "us-central1-aiplatform.googleapis.com"
    assert ours.url.path == (
        f"/v1/projects/{VERTEX_PROJECT}/locations/{VERTEX_REGION}"
        f"/publishers/google/models/{route.upstream_model}:predictLongRunning"
    )
    same_request(ours, sdk, ("authorization", "x-goog-user-project", "content-type"))
    assert ours.headers["authorization"] == f"Bearer {VERTEX_TOKEN}"
    assert "x-goog-api-key" not in ours.headers


def test_vertex_takes_what_the_gemini_api_refuses() -> None:
    """Vertex AI sends `generateAudio` (Veo 3 silent unless asked) and `seed`; Veo 2 gets
    neither a resolution nor an audio switch on either platform."""
    spec = job(duration_seconds=8, audio=False, seed=7)
    veo3 = Route(adapter="vertex", upstream_model="veo-3.0-generate-001", family="veo-3")
    parameters = vertex_body(spec, veo3, None, None)["parameters"]
    assert (parameters["generateAudio"], parameters["seed"]) == (False, 7)
    assert "storageUri" not in parameters
    veo2 = Route(adapter="vertex", upstream_model="veo-2.0-generate-001", family="veo-2")
    assert {"generateAudio", "resolution"}.isdisjoint(
        vertex_body(spec, veo2, None, None)["parameters"]
    )


@pytest.mark.parametrize(
    "name", ["running", "done_gcs", "done_inline", "rai_filtered", "error", "cancelled"]
)
async def test_vertex_operations_read_as_the_sdk_reads_them(name: str) -> None:
    """Poll one recorded operation with the adapter and with google-genai's
    `operations.get` in Vertex AI mode: the same request, state, video and verdict."""
    body = payload("vertex", name)
    recorder = Recorder(lambda r: httpx.Response(200, json=body))
    adapter = vertex_adapter(recorder.transport, None)
    route = Route(adapter="vertex", upstream_model="veo-3.0-generate-001")
    ours = await adapter.poll(route, body["name"])
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        sdk = await vertex_client(http).aio.operations.get(
            genai_types.GenerateVideosOperation(name=body["name"])
        )
    ours_request, sdk_request = recorder.seen
    same_request(ours_request, sdk_request, ("authorization", "content-type"))
    assert ours_request.url.path.endswith("veo-3.0-generate-001:fetchPredictOperation")
    videos = (sdk.response.generated_videos or []) if sdk.response else []
    video = videos[0].video if videos else None
    filtered = bool(sdk.response and sdk.response.rai_media_filtered_count)
    assert (ours.state is TaskState.RUNNING) == (not sdk.done)
    assert (ours.state is TaskState.CANCELLED) == bool(sdk.error and sdk.error["code"] == 1)
    assert (ours.failure_kind is FailureKind.CONTENT_REFUSED) == filtered
    assert (ours.state is TaskState.SUCCEEDED) == (video is not None)
    if video is not None and video.uri:
        assert ours.output_url == video.uri
    elif video is not None:
        async with adapter.download(str(ours.output_url)) as response:
            assert await response.aread() == video.video_bytes
    await adapter.aclose()


async def test_vertex_downloads_stored_videos_with_its_token_and_cancels() -> None:
    """A `gs://` output comes through Cloud Storage's JSON API media download, with the
    same bearer token; a cancel goes to the operation, and a refused one is no error."""
    recorder = Recorder(
        lambda r: (
            httpx.Response(200, content=b"mp4")
            if r.url.host == "storage.googleapis.com"
            else httpx.Response(400, json={"error": {"code": 400, "message": "not cancellable"}})
        )
    )
    adapter = vertex_adapter(recorder.transport, VERTEX_OUTPUT)
    stored = payload("vertex", "done_gcs")["response"]["videos"][0]["gcsUri"]
    async with adapter.download(stored) as response:
        assert await response.aread() == b"mp4"
    route = Route(adapter="vertex", upstream_model="veo-3.0-generate-001")
    await adapter.cancel(route, payload("vertex", "running")["name"])
    await adapter.aclose()
    download, cancel = recorder.seen
    bucket, _, name = stored.removeprefix("gs://").partition("/")
    assert download.url.raw_path.decode() == (
        f"/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}?alt=media"
    )
    assert download.headers["authorization"] == f"Bearer {VERTEX_TOKEN}"
    assert (cancel.method, cancel.url.path) == (
        "POST",
        f"/v1/{payload('vertex', 'running')['name']}:cancel",
    )


# --- fal ------------------------------------------------------------------------------------


@pytest.fixture
def fal_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """fal_client's queue client on the mock transport (it builds its own httpx client)."""
    recorder = Recorder(lambda r: httpx.Response(200, json=payload("fal", "submit")))
    monkeypatch.setattr(fal_client.client, "AsyncBackupDomainTransport", lambda: recorder.transport)
    yield recorder


def check_schema(body: dict[str, Any], table: dict[str, Any], model: str) -> None:
    assert model in table, f"no published input schema kept for {model}"
    try:
        jsonschema.validate(body, table[model])
    except jsonschema.ValidationError as exc:
        pytest.fail(f"{model}: {exc.message} at {list(exc.absolute_path)}")


@pytest.mark.parametrize("callback", [None, CALLBACK], ids=["poll", "callback"])
@pytest.mark.parametrize("shape", by_adapter("fal"))
async def test_fal_requests_match_the_sdk_and_the_schema(
    shape: Shape, callback: str | None, fal_on: Recorder
) -> None:
    spec, route = shape.job_and_route()
    image = HTTPS_IMAGE if shape.with_image else None
    adapter = FalAdapter("https://queue.fal.run", KEY, transport=fal_on.transport)
    await adapter.submit(spec, route, image=image, callback_url=callback)
    body = fal_input(spec, route, image)
    handle = await fal_client.AsyncClient(key=KEY).submit(
        route.upstream_model, arguments=body, webhook_url=callback
    )
    assert handle.request_id == payload("fal", "submit")["request_id"]
    ours, sdk = fal_on.seen
    same_request(ours, sdk, ("authorization",))
    check_schema(body, FAL_SCHEMAS, route.upstream_model)


# --- Replicate ------------------------------------------------------------------------------


@pytest.mark.parametrize("callback", [None, CALLBACK], ids=["poll", "callback"])
@pytest.mark.parametrize("shape", by_adapter("replicate"))
async def test_replicate_requests_match_the_sdk_and_the_schema(
    shape: Shape, callback: str | None
) -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json=payload("replicate", "processing")))
    spec, route = shape.job_and_route()
    image = HTTPS_IMAGE if shape.with_image else None
    base = "https://api.replicate.test"
    adapter = ReplicateAdapter(base, KEY, transport=recorder.transport)
    await adapter.submit(spec, route, image=image, callback_url=callback)
    body = replicate_input(spec, route, image)
    client = replicate.Client(api_token=KEY, base_url=base, transport=recorder.transport)
    hooks: dict[str, Any] = {}
    if callback:
        hooks = {"webhook": callback, "webhook_events_filter": ["completed"]}
    prediction = await client.models.predictions.async_create(
        model=route.upstream_model, input=body, **hooks
    )
    assert prediction.id == payload("replicate", "processing")["id"]
    ours, sdk = recorder.seen
    same_request(ours, sdk, ("authorization",))
    check_schema(body, REPLICATE_SCHEMAS, route.upstream_model)


# --- every combination the catalog offers ---------------------------------------------------


def every_offer() -> Iterator[Any]:
    for model in SERVED:
        for index, route in enumerate(model.routes):
            combos = list(offered(route))
            assert combos, f"{model.id} route {index + 1} offers nothing"
            yield pytest.param(model, route, combos, id=f"{model.id}-{route.upstream_model}")


@pytest.mark.parametrize(("model", "route", "combos"), list(every_offer()))
async def test_every_offered_combination_is_one_the_provider_takes(
    model: ModelSpec, route: RouteSpec, combos: list[tuple[str, str, int, bool]]
) -> None:
    for resolution, ratio, seconds, with_image in combos:
        shape = Shape(model, route, resolution, ratio, seconds, with_image, audio=route.audio)
        spec, one = shape.job_and_route()
        image = HTTPS_IMAGE if with_image else None
        if route.adapter == "runway":
            _, body = task_request(spec, one, image)
            check_typed(body, runway_params(one.upstream_model, with_image=with_image))
        elif route.adapter == "luma":
            body = generation_body(spec, one, image, None)
            check_typed(body, generation_create_params.GenerationCreateParams)
        elif route.adapter == "veo":  # on both platforms
            recorder = Recorder(gemini_answer)
            await gemini_sdk_request(recorder, spec, one, image)
            (sdk,) = recorder.posts()
            assert json.loads(sdk.content) == predict_body(spec, one, image)
            recorder = Recorder(vertex_answer(VERTEX_OUTPUT))
            await vertex_sdk_request(recorder, spec, one, image, VERTEX_OUTPUT)
            (sdk,) = recorder.posts()
            assert json.loads(sdk.content) == vertex_body(spec, one, image, VERTEX_OUTPUT)
        elif route.adapter == "fal":
            check_schema(fal_input(spec, one, image), FAL_SCHEMAS, one.upstream_model)
        else:
            check_schema(replicate_input(spec, one, image), REPLICATE_SCHEMAS, one.upstream_model)


def test_seed_defaults_are_offered_by_a_route_the_provider_takes() -> None:
    """A request with no options at all (each seed's default model) fits a route."""
    defaults = {
        "runway-gen3": ("1080p", "16:9", 4),  # seed 000
        "google/veo-3.0-generate-preview": ("1080p", "16:9", 4),  # seed 001: 16:9 only
        "kling-3.0-pro": ("1080p", "16:9", 5),  # seed 003's default model, landscape
    }
    for name, (resolution, ratio, seconds) in defaults.items():
        model = next(m for m in SERVED if name in (m.id, *m.aliases))
        assert any(
            route.fits(seconds, resolution, ratio, with_image=False, audio=False)
            for route in model.routes
        ), name


# --- what the SDKs retry, and what they parse ---------------------------------------------


@pytest.mark.parametrize("sdk", [runwayml.RunwayML, lumaai.LumaAI], ids=["runwayml", "lumaai"])
def test_every_status_the_sdks_retry_is_retryable_here(sdk: type) -> None:
    client = sdk(api_key=KEY) if sdk is runwayml.RunwayML else sdk(auth_token=KEY)
    request = httpx.Request("POST", "https://api.test/v1/x")
    retried = [
        code
        for code in range(400, 600)
        if client._should_retry(httpx.Response(code, request=request))
    ]
    assert {501, 520} <= set(retried)
    for code in range(400, 600):
        response = httpx.Response(code, json={"error": "x"}, request=request)
        try:
            raise_for_status(response, "p")
        except ProviderUnavailableError:
            assert code in (401, 403), code  # a rejected key waits for the operator's fix
        except RetryableProviderError:
            assert code in retried or code == 425, code  # 425 Too Early: retried here too
        except ProviderError:
            assert code not in retried, code


@pytest.mark.parametrize(
    ("provider", "parse"),
    [
        ("luma", lambda body: lumaai.types.Generation.model_validate(body)),
        ("replicate", lambda body: replicate.prediction.Prediction(**body)),
    ],
)
def test_recorded_answers_parse_with_the_sdk_models(
    provider: str, parse: Callable[[dict[str, Any]], Any]
) -> None:
    """The payloads the adapter tests replay are ones the SDK's own models accept."""
    recorded = json.loads(PAYLOADS.joinpath(f"{provider}.json").read_text())
    answers = {k: v for k, v in recorded.items() if not k.startswith("_") and "id" in v}
    assert answers
    for name, body in answers.items():
        parsed = parse(body)
        assert parsed.id == body["id"], name


@pytest.mark.parametrize("name", ["running", "done", "rai_filtered", "error"])
async def test_veo_operations_read_as_the_sdk_reads_them(name: str) -> None:
    """Poll one recorded operation with the adapter and with google-genai's own
    `operations.get`: the same state, video URI and filter verdict."""
    body = payload("gemini", name)
    recorder = Recorder(lambda r: httpx.Response(200, json=body))
    adapter = VeoAdapter("https://g.test/v1beta", KEY, transport=recorder.transport)
    ours = await adapter.poll(Route(adapter="gemini", upstream_model="m"), body["name"])
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = genai.Client(
            api_key=KEY,
            http_options=genai_types.HttpOptions(
                base_url="https://g.test", api_version="v1beta", httpx_async_client=http
            ),
        )
        sdk = await client.aio.operations.get(
            genai_types.GenerateVideosOperation(name=body["name"])
        )
    ours_request, sdk_request = recorder.seen
    assert (ours_request.method, ours_request.url.path) == (
        sdk_request.method,
        sdk_request.url.path,
    )
    assert ours_request.headers["x-goog-api-key"] == sdk_request.headers["x-goog-api-key"]
    videos = (sdk.response.generated_videos or []) if sdk.response else []
    uri = videos[0].video.uri if videos and videos[0].video else None
    filtered = bool(sdk.response and sdk.response.rai_media_filtered_count)
    assert ours.output_url == uri
    assert (ours.state is TaskState.RUNNING) == (not sdk.done)
    assert (ours.failure_kind is FailureKind.CONTENT_REFUSED) == filtered
    assert (ours.state is TaskState.FAILED) == bool(sdk.error or filtered)


# --- poll and cancel ------------------------------------------------------------------------

RUNWAY_TASK = {"id": "task-1", "status": "RUNNING", "createdAt": "2026-01-01T00:00:00Z"}


async def test_runway_poll_and_cancel_match_the_sdk() -> None:
    recorder = Recorder(
        lambda r: (
            httpx.Response(204) if r.method == "DELETE" else httpx.Response(200, json=RUNWAY_TASK)
        )
    )
    adapter = RunwayAdapter("https://runway.test", KEY, transport=recorder.transport)
    route = Route(adapter="runway", upstream_model="gen4.5")
    await adapter.poll(route, "task-1")
    await adapter.cancel(route, "task-1")
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = runwayml.AsyncRunwayML(
            api_key=KEY, base_url="https://runway.test", http_client=http, max_retries=0
        )
        task = await client.tasks.retrieve("task-1")
        await client.tasks.delete("task-1")
    assert task.status == "RUNNING"
    ours_poll, ours_cancel, sdk_poll, sdk_cancel = recorder.seen
    for ours, sdk in ((ours_poll, sdk_poll), (ours_cancel, sdk_cancel)):
        assert (ours.method, ours.url.path) == (sdk.method, sdk.url.path)
        for header in ("authorization", "x-runway-version"):
            assert ours.headers[header] == sdk.headers[header]


async def test_luma_poll_and_cancel_match_the_sdk() -> None:
    generation = payload("luma", "dreaming")
    recorder = Recorder(
        lambda r: (
            httpx.Response(204) if r.method == "DELETE" else httpx.Response(200, json=generation)
        )
    )
    base = "https://luma.test/dream-machine/v1"
    adapter = LumaAdapter(base, KEY, transport=recorder.transport)
    route = Route(adapter="luma", upstream_model="ray-2")
    await adapter.poll(route, generation["id"])
    await adapter.cancel(route, generation["id"])
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = lumaai.AsyncLumaAI(auth_token=KEY, base_url=base, http_client=http, max_retries=0)
        assert (await client.generations.get(generation["id"])).state == "dreaming"
        await client.generations.delete(generation["id"])
    ours_poll, ours_cancel, sdk_poll, sdk_cancel = recorder.seen
    for ours, sdk in ((ours_poll, sdk_poll), (ours_cancel, sdk_cancel)):
        assert (ours.method, ours.url.path) == (sdk.method, sdk.url.path)
        assert ours.headers["authorization"] == sdk.headers["authorization"]


async def test_replicate_poll_and_cancel_match_the_sdk() -> None:
    prediction = payload("replicate", "processing")
    recorder = Recorder(lambda r: httpx.Response(200, json=prediction))
    base = "https://api.replicate.test"
    adapter = ReplicateAdapter(base, KEY, transport=recorder.transport)
    route = Route(adapter="replicate", upstream_model="minimax/hailuo-02")
    await adapter.poll(route, prediction["id"])
    await adapter.cancel(route, prediction["id"])
    client = replicate.Client(api_token=KEY, base_url=base, transport=recorder.transport)
    assert (await client.predictions.async_get(prediction["id"])).status == "processing"
    await client.predictions.async_cancel(prediction["id"])
    ours_poll, ours_cancel, sdk_poll, sdk_cancel = recorder.seen
    for ours, sdk in ((ours_poll, sdk_poll), (ours_cancel, sdk_cancel)):
        assert (ours.method, ours.url.path) == (sdk.method, sdk.url.path)
        assert ours.headers["authorization"] == sdk.headers["authorization"]


async def test_fal_poll_result_and_cancel_match_the_sdk(fal_on: Recorder) -> None:
    """fal's status, result and cancel calls on the URLs its submit answer gave."""
    submit = payload("fal", "submit")
    completed, result = payload("fal", "status_completed"), payload("fal", "result")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json=completed)
        return httpx.Response(200, json=result)

    fal_on.answer = answer
    adapter = FalAdapter("https://queue.fal.run", KEY, transport=fal_on.transport)
    route = Route(adapter="fal", upstream_model="fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    handle_text = json.dumps(
        {k: submit[k] for k in ("request_id", "status_url", "response_url", "cancel_url")}
    )
    status = await adapter.poll(route, handle_text)
    assert status.output_url == result["video"]["url"]
    await adapter.cancel(route, handle_text)
    # The SDK rebuilds the URLs from the app id; they are the ones fal's answer gave.
    handle = await fal_client.AsyncClient(key=KEY).get_handle(
        route.upstream_model, submit["request_id"]
    )
    assert (handle.status_url, handle.response_url, handle.cancel_url) == (
        submit["status_url"],
        submit["response_url"],
        submit["cancel_url"],
    )
    assert isinstance(await handle.status(with_logs=True), fal_client.Completed)
    assert (await handle.get())["video"]["url"] == result["video"]["url"]
    await handle.cancel()
    ours_status, ours_result, ours_cancel = fal_on.seen[:3]
    sdk = fal_on.seen[3:]
    sdk_status = next(r for r in sdk if r.url.path.endswith("/status"))
    sdk_result = next(r for r in sdk if r.method == "GET" and not r.url.path.endswith("/status"))
    sdk_cancel = next(r for r in sdk if r.method == "PUT")
    for ours, theirs in (
        (ours_status, sdk_status),
        (ours_result, sdk_result),
        (ours_cancel, sdk_cancel),
    ):
        assert (ours.method, ours.url.host, ours.url.path) == (
            theirs.method,
            theirs.url.host,
            theirs.url.path,
        )
        assert ours.headers["authorization"] == theirs.headers["authorization"]
    # fal documents `?logs=1`; its client sends `logs=true`: the same switch.
    assert ours_status.url.params["logs"] == "1" and sdk_status.url.params["logs"] == "true"


# --- finding a lost submit: the list calls --------------------------------------------------

NOW = datetime.now(UTC)
SINCE = NOW - timedelta(minutes=1)
SIGNED = SourceImage(
    url="https://bucket.test/in.png?X-Amz-Signature=new", content_type="image/png", data=PNG
)
EARLIER_SIGNED = "https://bucket.test/in.png?X-Amz-Signature=old"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def same_get(ours: httpx.Request, sdk: httpx.Request) -> None:
    assert (ours.method, ours.url.host, ours.url.path) == (sdk.method, sdk.url.host, sdk.url.path)
    assert dict(ours.url.params) == dict(sdk.url.params)
    assert ours.headers["authorization"] == sdk.headers["authorization"]


def luma_generation(gid: str, request: dict[str, Any], created: datetime) -> dict[str, Any]:
    return {
        **payload("luma", "dreaming"),
        "id": gid,
        "created_at": iso(created),
        "request": request,
    }


async def test_luma_finds_a_lost_generation_as_the_sdk_lists_them() -> None:
    """Paged by `limit`/`offset` as `generations.list` sends them; the job's generation is
    the one of the route's model echoing the job's callback URL or, without one, the
    adapter's whole request, whatever the source image's signature."""
    spec = job(image={"key": "in.png", "content_type": "image/png"})
    route = Route(adapter="luma", upstream_model="ray-2", family="luma-ray", clip_seconds=5)
    mine = generation_body(spec, route, SIGNED, CALLBACK)
    mine["keyframes"] = {"frame0": {"type": "image", "url": EARLIER_SIGNED}}
    others = [
        luma_generation(f"other-{n}", {**mine, "callback_url": CALLBACK + str(n)}, NOW)
        for n in range(LUMA_LIST_LIMIT)
    ]
    pages = {
        "0": {"generations": others, "count": len(others), "has_more": True},
        str(LUMA_LIST_LIMIT): {
            "generations": [
                luma_generation("lost", mine, NOW),
                luma_generation("older", mine, SINCE - timedelta(seconds=1)),
            ],
            "has_more": False,
        },
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params["offset"]])

    recorder = Recorder(answer)
    base = "https://luma.test/dream-machine/v1"
    adapter = LumaAdapter(base, KEY, transport=recorder.transport)
    found = await adapter.find_submitted(
        spec, route, since=SINCE, image=SIGNED, callback_url=CALLBACK
    )
    assert found == "lost"
    ours = list(recorder.seen)
    async with httpx.AsyncClient(transport=recorder.transport) as http:
        client = lumaai.AsyncLumaAI(auth_token=KEY, base_url=base, http_client=http, max_retries=0)
        listed = [
            await client.generations.list(limit=LUMA_LIST_LIMIT, offset=offset)
            for offset in (0, LUMA_LIST_LIMIT)
        ]
    assert listed[1].generations[0].id == "lost"
    for page in pages.values():
        GenerationListResponse.model_validate(page)
    assert len(ours) == 2
    for own, sdk in zip(ours, recorder.seen[2:], strict=True):
        same_get(own, sdk)
    elsewhere = await adapter.find_submitted(
        spec, route, since=SINCE, image=SIGNED, callback_url=CALLBACK + "x"
    )
    assert elsewhere is None
    # Without a callback URL the whole request is compared, the image by its object.
    unhooked = {k: v for k, v in mine.items() if k != "callback_url"}
    pages["0"] = {
        "generations": [
            luma_generation("other-prompt", {**unhooked, "prompt": "a cat"}, NOW),
            luma_generation("lost", unhooked, NOW),
        ],
        "has_more": False,
    }
    assert await adapter.find_submitted(spec, route, since=SINCE, image=SIGNED) == "lost"
    other_image = SourceImage(
        url="https://bucket.test/other.png", content_type="image/png", data=PNG
    )
    assert await adapter.find_submitted(spec, route, since=SINCE, image=other_image) is None


async def test_replicate_finds_a_lost_prediction_as_the_sdk_lists_them() -> None:
    """Paged by the `next` URL as `predictions.list` follows it; the job's prediction is the
    one of the route's model whose input is the adapter's own, whatever the image's
    signature; a `next` on another host is not followed (it would get our key)."""
    shape = next(s for s in ALL_SHAPES if s.route.adapter == "replicate" and s.with_image)
    spec, route = shape.job_and_route()
    base = "https://api.replicate.test"
    mine = unsigned(replicate_input(spec, route, SIGNED), SIGNED)
    mine = {k: EARLIER_SIGNED if v == SIGNED.url.partition("?")[0] else v for k, v in mine.items()}
    assert EARLIER_SIGNED in mine.values()

    def prediction(pid: str, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            **payload("replicate", "processing"),
            "id": pid,
            "model": model,
            "input": inputs,
            "created_at": iso(NOW),
        }

    pages = {
        "": {
            "previous": None,
            "next": f"{base}/v1/predictions?cursor=page2",
            "results": [
                prediction("other-model", "someone/else", mine),
                prediction("other-input", route.upstream_model, {**mine, "prompt": "x"}),
            ],
        },
        "page2": {
            "previous": f"{base}/v1/predictions?cursor=page1",
            "next": "https://elsewhere.test/v1/predictions?cursor=page3",
            "results": [prediction("lost", route.upstream_model, mine)],
        },
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor", "")])

    recorder = Recorder(answer)
    adapter = ReplicateAdapter(base, KEY, transport=recorder.transport)
    assert await adapter.find_submitted(spec, route, since=SINCE, image=SIGNED) == "lost"
    assert len(recorder.seen) == 2
    client = replicate.Client(api_token=KEY, base_url=base, transport=recorder.transport)
    first = await client.predictions.async_list()
    second = await client.predictions.async_list(first.next)
    assert [p.id for p in second] == ["lost"]
    for own, sdk in zip(recorder.seen[:2], recorder.seen[2:], strict=True):
        same_get(own, sdk)
    recorder.seen.clear()
    pages["page2"]["results"] = []
    assert await adapter.find_submitted(spec, route, since=SINCE, image=SIGNED) is None
    assert {r.url.host for r in recorder.seen} == {"api.replicate.test"}
