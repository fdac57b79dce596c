"""Bad input and bad days (issue 11): each dialect answers a 4xx in its own shape naming the
field, never a 500; reused idempotency keys; internal ids; an S3 outage; slow clients.

Real `python -m api` and worker processes (so the server's own limits apply), real Temporal,
S3 and emulator.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from api.server import BoundedHeadProtocol
from reelay import devstack
from reelay.settings import Settings
from tests.conftest import DEV_API_KEY, isolated_settings
from tests.support import MakeStack, serving_app

AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}

# One valid submit per dialect: (path, body, extra headers).
SUBMITS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "native": ("/v1/video/generations", {"prompt": "a kite", "duration_seconds": 2}, {}),
    "seed001": (
        "/v1/video/generations",
        {"model": "veo-3", "prompt": "a kite", "parameters": {"durationSeconds": 4}},
        {"X-App-ID": "app"},
    ),
    "seed002": (
        "/v2/videos/generate",
        {"model": "runway-gen3", "prompt": "a kite", "parameters": {"duration": 2}},
        {},
    ),
    "seed003": ("/api/v1/videos/generate", {"prompt": "a kite", "duration": 5}, {}),
    "seed004": ("/v1/videos", {"model": "veo-3", "prompt": "a kite", "duration": 4}, {}),
    "openai": ("/v1/videos", {"model": "runway-gen3", "prompt": "a kite", "seconds": "2"}, {}),
}


def error_text(body: Any) -> str:
    """The message of an error body, whatever the dialect's shape."""
    if isinstance(body.get("error"), str):
        return str(body.get("message", body["error"]))
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack) -> Settings:
    return make_stack().settings


@pytest.fixture
def api(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as client:
        yield client


def submit_raw(api: httpx.Client, dialect: str, raw: bytes, **headers: str) -> httpx.Response:
    path, _, extra = SUBMITS[dialect]
    return api.post(
        path, content=raw, headers={"Content-Type": "application/json", **extra, **headers}
    )


def wait_native(api: httpx.Client, job_id: str, status: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = api.get(f"/v1/video/generations/{job_id}").json()
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, f"job stayed {body['status']}"
        time.sleep(0.1)


# --- idempotency (item 8) --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", sorted(SUBMITS))
def test_a_reused_key_with_another_body_is_409_in_the_dialects_shape(
    api: httpx.Client, dialect: str
) -> None:
    path, body, extra = SUBMITS[dialect]
    key = {"Idempotency-Key": f"reuse-{dialect}-{time.time_ns()}"}
    first = api.post(path, json=body, headers={**extra, **key})
    assert first.status_code in (200, 202), first.text
    other = api.post(path, json={**body, "prompt": "another prompt"}, headers={**extra, **key})
    assert other.status_code == 409, other.text
    assert "Idempotency-Key" in error_text(other.json())
    assert "another prompt" not in other.text


def test_a_retry_with_the_same_key_answers_the_existing_job(api: httpx.Client) -> None:
    path, body, _ = SUBMITS["native"]
    key = {"Idempotency-Key": f"retry-{time.time_ns()}"}
    first = api.post(path, json=body, headers=key).json()
    again = api.post(path, json=body, headers=key)
    assert again.status_code == 202
    retried = again.json()
    assert retried["id"] == first["id"]
    # Rendered from the job that exists, not from the retry's own (new) request.
    assert retried["perf"]["request_id"] == first["perf"]["request_id"]
    assert retried["created_at"] == first["created_at"]


def test_an_idempotency_key_over_255_characters_is_400(api: httpx.Client) -> None:
    path, body, _ = SUBMITS["native"]
    response = api.post(path, json=body, headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]


# --- bodies (items 0, 3, 4, 7) ---------------------------------------------------------------


@pytest.mark.parametrize("dialect", sorted(SUBMITS))
@pytest.mark.parametrize(
    ("text", "rule"), [("a \\u0000 kite", "NUL"), ("a \\ud800 kite", "not valid Unicode")]
)
def test_nul_and_lone_surrogates_in_a_prompt_are_400(
    api: httpx.Client, dialect: str, text: str, rule: str
) -> None:
    _, body, _ = SUBMITS[dialect]
    raw = httpx.Request("POST", "/", json={**body, "prompt": "PROMPT"}).content
    response = submit_raw(api, dialect, raw.replace(b"PROMPT", text.encode()))
    assert response.status_code == 400, response.text
    assert rule in error_text(response.json())
    assert "prompt" in error_text(response.json())


@pytest.mark.parametrize(
    ("dialect", "field"), [("native", "webhook_url"), ("seed002", "webhookUrl")]
)
def test_bad_webhook_urls_are_400_naming_the_field(
    api: httpx.Client, dialect: str, field: str
) -> None:
    _, body, _ = SUBMITS[dialect]
    for url in ("https://exa mple.com/hook", "https://h.example.com/\\ud800"):
        raw = httpx.Request("POST", "/", json={**body, field: "URL"}).content
        response = submit_raw(api, dialect, raw.replace(b'"URL"', f'"{url}"'.encode()))
        assert response.status_code == 400, (url, response.text)
        assert field in error_text(response.json())


@pytest.mark.parametrize("dialect", sorted(SUBMITS))
def test_deeply_nested_json_is_400(api: httpx.Client, dialect: str) -> None:
    response = submit_raw(api, dialect, b'{"prompt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    assert response.status_code in (400, 413), response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
@pytest.mark.parametrize("dialect", ["native", "seed002", "seed003", "openai"])
def test_bodies_that_are_not_json_are_415(
    api: httpx.Client, dialect: str, content_type: str
) -> None:
    response = submit_raw(api, dialect, b'{"prompt": "a kite"}', **{"Content-Type": content_type})
    assert response.status_code == 415, response.text


def test_a_body_over_the_cap_is_413(api: httpx.Client) -> None:
    huge = b'{"prompt": "' + b"x" * (1024 * 1024) + b'"}'
    assert submit_raw(api, "native", huge).status_code == 413


@pytest.mark.parametrize(
    ("dialect", "field", "body"),
    [
        (
            "native",
            "duration_seconds",
            b'{"prompt": "a kite", "duration_seconds": ' + b"9" * 5000 + b"}",
        ),
        (
            "seed004",
            "duration",
            b'{"model": "veo-3", "prompt": "x", "duration": ' + b"9" * 5000 + b"}",
        ),
    ],
)
def test_a_5000_digit_duration_is_400_naming_the_field(
    api: httpx.Client, dialect: str, field: str, body: bytes
) -> None:
    response = submit_raw(api, dialect, body)
    assert response.status_code == 400, response.text
    assert field in error_text(response.json())


def test_authentication_comes_before_the_body(stack: Settings) -> None:
    for path in ("/v1/video/generations", "/v2/videos/generate", "/v1/videos", "/v1/media"):
        response = httpx.post(
            f"{stack.public_url}{path}",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 401, (path, response.text)


# --- OpenAI fields (item 2) ------------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["²", "9" * 5000, "-4", "4.5"])
def test_openai_bad_seconds_are_400_naming_seconds(api: httpx.Client, seconds: str) -> None:
    body = {"model": "runway-gen3", "prompt": "a kite", "seconds": seconds}
    for response in (
        api.post("/v1/videos", json=body),
        api.post("/v1/videos", data=body, files={"unused": ("x.txt", b"x", "text/plain")}),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "seconds"


@pytest.mark.parametrize("model", ["sora-2", "midjourney-video"])
def test_openai_size_with_a_model_without_sizes_is_the_documented_400(
    api: httpx.Client, model: str
) -> None:
    response = api.post("/v1/videos", json={"model": model, "prompt": "x", "size": "1280x720"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "model"


# --- links and callbacks (item 1) ------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["expires=%C2%B2&signature=ab", "expires=1&signature=%C3%A9", "expires=" + "9" * 5000]
)
def test_malformed_signed_links_are_403(stack: Settings, query: str) -> None:
    url = f"{stack.public_url}/v1/video/generations/job_vid_{'0' * 32}/content?{query}"
    assert httpx.get(url).status_code == 403


def test_a_non_ascii_callback_token_is_refused(stack: Settings) -> None:
    url = f"{stack.public_url}/v1/providers/runway/callbacks/job_vid_{'0' * 32}?token=%C3%A9"
    response = httpx.post(url, content=b"{}")
    assert response.status_code == 404


# --- listing (item 5) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"created_after": "0001-01-01T00:00:00+14:00"},
        {"created_before": "9999-12-31T23:59:59-14:00"},
        {"model": "veo\x003"},
        {"app_id": "a\x00b"},
        {"model": "m" * 300},
        # base64 of ["2026-01-01T00:00:00", "job"]: a naive datetime
        {"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgImpvYiJd"},
        # base64 of ["0001-01-01T00:00:00+14:00", "job"]
        {"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwgImpvYiJd"},
    ],
)
def test_bad_listing_filters_are_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/v1/video/generations", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"


# Found by the fuzzing (tests/integration/test_fuzz.py): forms the document's `date-time`
# does not allow were read leniently (unix seconds, a date alone, a naive time).
@pytest.mark.parametrize("value", ["421684", "2026-01-01", "2026-01-01T00:00:00", "-1"])
@pytest.mark.parametrize("field", ["created_after", "created_before"])
def test_listing_times_are_rfc_3339_date_times(api: httpx.Client, field: str, value: str) -> None:
    response = api.get("/v1/video/generations", params={field: value})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]
    fine = api.get("/v1/video/generations", params={field: "2026-12-01T09:00:00.5+01:00"})
    assert fine.status_code == 200, fine.text


# Found by the fuzzing: an empty model id was read as "no model" (the default model).
@pytest.mark.parametrize("dialect", sorted(SUBMITS))
def test_an_empty_model_id_is_400_naming_the_model(api: httpx.Client, dialect: str) -> None:
    path, body, extra = SUBMITS[dialect]
    response = api.post(path, json={**body, "model": ""}, headers=extra)
    assert response.status_code == 400, response.text
    assert "model" in error_text(response.json())


@pytest.mark.parametrize(
    ("dialect", "fields", "named"),
    [
        ("native", {"aspect_ratio": ""}, "aspect_ratio"),
        ("native", {"resolution": ""}, "resolution"),
        ("seed001", {"parameters": {"aspectRatio": ""}}, "aspectRatio"),
        ("seed002", {"parameters": {"resolution": ""}}, "resolution"),
        ("seed004", {"aspect_ratio": ""}, "aspect_ratio"),
        ("openai", {"size": ""}, "size"),
    ],
)
def test_an_empty_frame_field_is_400_naming_it(
    api: httpx.Client, dialect: str, fields: dict[str, Any], named: str
) -> None:
    """Found by the fuzzing: an empty value was read as absent (the model's default)."""
    path, body, extra = SUBMITS[dialect]
    response = api.post(path, json={**body, **fields}, headers=extra)
    assert response.status_code == 400, response.text
    assert named in error_text(response.json())


# --- internal ids (item 6) -------------------------------------------------------------------


def test_internal_workflow_ids_are_not_jobs(api: httpx.Client) -> None:
    job = api.post(
        "/v1/video/generations",
        json={"prompt": "a kite", "duration_seconds": 2, "webhook_url": "https://h.example.com/"},
    ).json()
    wait_native(api, job["id"], "complete")
    for internal in (f"{job['id']}:webhook:completed", f"{job['id']}:segment:0"):
        for response in (
            api.get(f"/v1/video/generations/{internal}"),
            api.post(f"/v1/video/generations/{internal}/cancel"),
            api.get(f"/v1/video/generations/{internal}/content"),
            api.get(f"/v2/jobs/{internal}"),
            api.get(f"/v1/videos/{internal}"),
            api.delete(f"/v1/videos/{internal}"),
            api.get(f"/v1/videos/{internal}/content"),
        ):
            assert response.status_code == 404, (response.request.url, response.text)


# --- the server's own limits (item 0) --------------------------------------------------------


def test_a_300_kb_header_is_refused(stack: Settings) -> None:
    try:
        response = httpx.get(f"{stack.public_url}/healthz", headers={"X-Big": "a" * 300_000})
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return  # the server closed or reset the connection: refused
    assert 400 <= response.status_code < 500


def _status_for_head_of(stack: Settings, header_bytes: int) -> bytes:
    """The status line the API answers a GET whose head carries `header_bytes` of header."""
    host, port = devstack.split_host_port(stack.public_url.removeprefix("http://"))
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * header_bytes
            + b"\r\nConnection: close\r\n\r\n"
        )
        return client.makefile("rb").readline().rstrip()


def test_a_head_over_32_kib_is_431_and_one_under_it_is_served(stack: Settings) -> None:
    assert _status_for_head_of(stack, 40_000) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert _status_for_head_of(stack, 30_000) == b"HTTP/1.1 200 OK"
    big = b"POST /v1/videos HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    answer = _raw_answer(stack.public_url, big)
    assert answer.status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert answer.body["error"]["type"] == "invalid_request_error"  # OpenAI's, on its route
    assert "larger than 32768 bytes" in answer.body["error"]["message"]


@dataclass
class RawAnswer:
    status: bytes
    headers: dict[bytes, bytes]
    body: Any


def _raw_answer(base_url: str, request: bytes) -> RawAnswer:
    """What the server at `base_url` answers `request`, sent as it is; checks that the answer
    says it is JSON of the length it has."""
    host, port = devstack.split_host_port(base_url.removeprefix("http://"))
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(request)
        answer = b"".join(iter(lambda: client.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(body)
    return RawAnswer(status, headers, json.loads(body))


@pytest.mark.parametrize(
    ("request_line", "error_type"),
    [
        (b"POST /v1/batches HTTP/1.1", "invalid_request"),  # native
        (b"POST /v1/videos HTTP/1.1", "invalid_request_error"),  # OpenAI
        (b"\x00\x01 garbage", "invalid_request"),  # no request line: native
    ],
)
def test_a_head_http_cannot_parse_is_a_400_in_the_routes_dialect(
    stack: Settings, request_line: bytes, error_type: str
) -> None:
    head = request_line + b"\r\nHost: x\r\nContent-Length: a6W\r\n\r\n"
    answer = _raw_answer(stack.public_url, head)
    assert answer.status == b"HTTP/1.1 400 Bad Request"
    assert answer.body["error"]["type"] == error_type
    assert "malformed HTTP request" in answer.body["error"]["message"]


def test_a_request_head_that_never_ends_is_cut_off(stack: Settings) -> None:
    host, port = devstack.split_host_port(stack.public_url.removeprefix("http://"))
    with socket.create_connection((host, port), timeout=60) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("request_line", "error_type"),
    [
        (b"GET /v1/video/generations/job_vid_0 HTTP/1.1", "service_unavailable"),  # native
        (b"GET /v1/videos/video_0 HTTP/1.1", "server_error"),  # OpenAI
    ],
)
def test_a_request_over_the_connection_limit_is_a_503_in_the_routes_dialect(
    stack: Settings, request_line: bytes, error_type: str
) -> None:
    port = devstack.free_port()
    config = {"http": BoundedHeadProtocol, "limit_concurrency": 2}
    with serving_app(create_app(stack), port, **config) as url:
        with socket.create_connection(("127.0.0.1", port), timeout=10):  # one of the two
            answer = _raw_answer(url, request_line + b"\r\nHost: x\r\n\r\n")
        assert answer.status == b"HTTP/1.1 503 Service Unavailable"
        assert answer.headers[b"retry-after"] == b"1"
        assert answer.headers[b"connection"] == b"close"
        assert answer.body["error"]["type"] == error_type
        assert "limit of 2 concurrent connections" in answer.body["error"]["message"]
        # with the other connection gone, the same server serves
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_an_unfinished_body_is_not_an_error(stack: Settings, stack_dir: Path) -> None:
    host, port = devstack.split_host_port(stack.public_url.removeprefix("http://"))
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(
            b"POST /v1/video/generations HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + DEV_API_KEY.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt": '
        )
    log = stack_dir / "logs" / "hostile_input-1-api.log"
    deadline = time.monotonic() + 20
    while "client disconnected" not in log.read_text():
        assert time.monotonic() < deadline, "the disconnect was not logged"
        time.sleep(0.1)
    text = log.read_text()
    assert "unhandled error" not in text
    assert "Traceback" not in text
    assert httpx.get(f"{stack.public_url}/healthz", timeout=5).status_code == 200


# --- S3 outage (item 12) ---------------------------------------------------------------------


@pytest.fixture
def api_without_s3(stack: Settings) -> Iterator[str]:
    """An API on the same Temporal whose S3 is a closed port: its base URL."""
    closed = devstack.free_port()
    api_port = devstack.free_port()
    broken = isolated_settings(
        **{
            **stack.model_dump(),
            "s3_endpoint": f"127.0.0.1:{closed}",
            "api_port": api_port,
            "public_url": f"http://127.0.0.1:{api_port}",
        }
    )
    with serving_app(create_app(broken), api_port) as url:
        yield url


def test_status_reads_keep_working_while_s3_is_down(
    api: httpx.Client, stack: Settings, api_without_s3: str
) -> None:
    job = api.post("/v1/video/generations", json={"prompt": "a kite", "duration_seconds": 2})
    job_id = job.json()["id"]
    done = wait_native(api, job_id, "complete")
    closed_port = stack.s3_endpoint  # the working one must not leak either
    with httpx.Client(base_url=api_without_s3, headers=AUTH, timeout=30) as broken:
        started = time.monotonic()
        for path in (
            f"/v1/video/generations/{job_id}",
            f"/v1/videos/{job_id}",
            f"/v2/jobs/{job_id}",
        ):
            response = broken.get(path)
            assert response.status_code == 200, (path, response.text)
        assert time.monotonic() - started < 15
        signed = done["video_url"].replace(stack.public_url, api_without_s3)
        for response in (
            httpx.get(signed, timeout=30),
            broken.get(f"/v1/video/generations/{job_id}/content"),
            broken.get(f"/v1/videos/{job_id}/content"),
        ):
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) > 0
            for secret in ("127.0.0.1", closed_port, stack.s3_bucket, "videos/"):
                assert secret not in response.text


# --- the OpenAPI document (item 9) -----------------------------------------------------------


def _fits(schema: dict[str, Any], body: dict[str, Any]) -> bool:
    """`body`'s top-level fields are the schema's: all required present, none unknown."""
    options = schema.get("oneOf", [schema])
    return any(
        set(option.get("required", ())) <= body.keys() <= option["properties"].keys()
        for option in options
    )


def test_the_openapi_document_tells_the_truth(api: httpx.Client, stack: Settings) -> None:
    doc = httpx.get(f"{stack.public_url}/openapi.json").json()
    assert {"bearer", "apiKey"} <= doc["components"]["securitySchemes"].keys()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if operation.get("security"):
                assert "401" in operation["responses"], (method, path)
    # Real error answers, each documented for its route with its dialect's body.
    samples = [
        ("/v1/video/generations", "post", submit_raw(api, "native", b"[1]")),
        ("/v1/video/generations", "post", submit_raw(api, "seed001", b"[1]")),
        ("/v2/videos/generate", "post", submit_raw(api, "seed002", b"[1]")),
        ("/api/v1/videos/generate", "post", submit_raw(api, "seed003", b"[1]")),
        ("/v1/videos", "post", submit_raw(api, "openai", b"[1]")),
        ("/v1/videos", "post", submit_raw(api, "openai", b"{}", **{"Content-Type": "text/plain"})),
        ("/v2/jobs/{jobId}", "get", api.get(f"/v2/jobs/job_vid_{'0' * 32}")),
        ("/v1/videos/{video_id}", "get", httpx.get(f"{stack.public_url}/v1/videos/x")),
        ("/v1/video/generations", "get", api.get("/v1/video/generations?limit=0")),
    ]
    for path, method, response in samples:
        documented = doc["paths"][path][method]["responses"]
        assert str(response.status_code) in documented, (path, response.status_code)
        schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
        assert _fits(schema, response.json()), (path, response.json())
