"""Veo on Vertex AI: service-account tokens from the key file's token endpoint (a local
server here), refreshed off the event loop, and the deployment's choice of Google platform."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from pydantic import ValidationError

from api.routers.models import model_info
from providers.catalog import find_model, resolve_request
from providers.errors import ProviderUnavailableError
from providers.families import FAMILIES, PLATFORMS
from providers.registry import (
    EMULATOR_KEY,
    Endpoint,
    build_adapters,
    configured_providers,
    deployed_routes,
    endpoint,
)
from providers.vertex import SCOPE, VertexAdapter, service_account_credentials
from reelay.jobs import JobSpec
from reelay.settings import Settings
from tests.conftest import isolated_settings
from tests.unit.test_sdk_contract import job, payload

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCOUNT = "reelay-veo@reelay-test.iam.gserviceaccount.com"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what a grant names, wherever it is sent


class TokenServer:
    """An OAuth token endpoint: checks the service account's signed JWT grant, mints tokens.

    `hold` makes it wait for `release` before answering; `refuse` answers invalid_grant.
    """

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.minted: list[str] = []
        self.claims: list[dict[str, Any]] = []
        self.hold = False
        self.refuse = False
        self.received = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                server.received.set()
                if server.hold:
                    server.release.wait(10)
                status, body = server.answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/token"

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.refuse:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        assert form["grant_type"] == [GRANT]
        claims = jwt.decode(form["assertion"][0], certs=self.public_pem, audience=AUDIENCE)
        self.claims.append(claims)
        token = f"ya29.minted-{len(self.minted) + 1}"
        self.minted.append(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[tuple[TokenServer, Path]]:
    """A running token server and a service-account key file whose `token_uri` is it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server = TokenServer(public_pem)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "reelay-test",
                "private_key_id": "key-1",
                "private_key": private_pem.decode(),
                "client_email": ACCOUNT,
                "client_id": "1",
                "token_uri": server.url,
            }
        )
    )
    try:
        yield server, key_file
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join()


def veo_job() -> JobSpec:
    spec = job(duration_seconds=8, resolution="720p")
    route = resolve_request(prompt="x", model="veo-3").routes[0]
    return spec.model_copy(update={"routes": [route]})


class Api:
    """Vertex AI's API on a mock transport: records the bearer token of every call."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request.headers["authorization"])
        return httpx.Response(200, json=payload("vertex", "running"))


async def test_tokens_come_from_the_key_files_endpoint_refreshed_off_the_event_loop(
    token_server: tuple[TokenServer, Path],
) -> None:
    server, key_file = token_server
    credentials = service_account_credentials(key_file)
    api = Api()
    adapter = VertexAdapter(
        "https://us-central1-aiplatform.googleapis.com/v1",
        project=credentials.project_id,
        location="us-central1",
        credentials=credentials,
        transport=api.transport,
    )
    spec = veo_job()
    server.hold = True
    submit = asyncio.create_task(adapter.submit(spec, spec.routes[0]))
    # The refresh waits on the token server; the event loop keeps running meanwhile.
    assert await asyncio.to_thread(server.received.wait, 10)
    assert not submit.done() and api.tokens == []
    server.release.set()
    await submit
    await adapter.submit(spec, spec.routes[0])  # the token is reused while valid
    assert api.tokens == ["Bearer ya29.minted-1"] * 2
    [claims] = server.claims
    assert (claims["iss"], claims["scope"]) == (ACCOUNT, SCOPE)

    credentials.expiry = datetime.utcnow() - timedelta(seconds=1)  # google-auth: naive UTC
    await adapter.poll(spec.routes[0], payload("vertex", "running")["name"])
    assert api.tokens[-1] == "Bearer ya29.minted-2"
    await adapter.aclose()


async def test_a_refused_or_unreachable_token_endpoint_waits_for_the_operator(
    token_server: tuple[TokenServer, Path], tmp_path: Path
) -> None:
    server, key_file = token_server
    server.refuse = True
    api = Api()
    spec = veo_job()
    unreachable = tmp_path / "unreachable.json"
    unreachable.write_text(
        key_file.read_text().replace(server.url, "http://127.0.0.1:9/token")  # discard port
    )
    for path in (key_file, unreachable):
        adapter = VertexAdapter(
            "https://us-central1-aiplatform.googleapis.com/v1",
            project="reelay-test",
            location="us-central1",
            credentials=service_account_credentials(path),
            transport=api.transport,
        )
        with pytest.raises(ProviderUnavailableError, match="vertex token"):
            await adapter.submit(spec, spec.routes[0])
        await adapter.aclose()
    assert api.tokens == []  # nothing reached Vertex AI without a token


# --- the deployment's platform ----------------------------------------------------------------


def test_every_platform_setting_is_a_platform_of_the_veo_families() -> None:
    choices = Settings.model_fields["veo_platform"].annotation
    assert set(getattr(choices, "__args__", ())) == set(PLATFORMS["veo"])
    assert {f.adapter for f in FAMILIES.values() if f.name.startswith("veo-")} == {"veo"}


def test_veo_routes_run_on_the_gemini_api_by_default() -> None:
    settings = isolated_settings()
    routes = deployed_routes(settings, resolve_request(prompt="x", model="veo-3").routes)
    assert [(r.adapter, r.upstream_model) for r in routes] == [
        ("gemini", "veo-3.0-generate-001"),
        ("runway", "veo3.1"),
    ]
    assert set(build_adapters(settings)) == {"runway", "luma", "gemini", "fal", "replicate"}


async def test_a_vertex_deployment_serves_veo_on_vertex_ai() -> None:
    settings = isolated_settings(veo_platform="vertex", vertex_region="europe-west4")
    routes = deployed_routes(settings, resolve_request(prompt="x", model="veo-3.1").routes)
    assert [(r.adapter, r.family) for r in routes] == [
        ("vertex", "veo-3.1"),
        ("runway", "runway-veo3.1"),
    ]
    adapters = build_adapters(settings)
    assert set(adapters) == {"runway", "luma", "vertex", "fal", "replicate"}
    assert isinstance(adapters["vertex"], VertexAdapter)
    # Unkeyed in development: the emulator's Vertex AI prefix, any bearer token.
    assert endpoint(settings, "vertex") == Endpoint(
        f"{settings.emulator_url}/vertex/v1", EMULATOR_KEY, emulated=True
    )
    model = find_model("veo-3")
    assert model is not None
    assert [r.provider for r in model_info(model, settings).routes] == ["vertex", "runway"]
    for adapter in adapters.values():
        await adapter.aclose()


async def test_vertex_in_production_needs_its_key_file(
    token_server: tuple[TokenServer, Path],
) -> None:
    server, key_file = token_server
    keys = {"require_provider_keys": True, "runway_api_key": "rk", "veo_platform": "vertex"}
    unkeyed = isolated_settings(**keys)
    assert "vertex" not in configured_providers(unkeyed)
    routes = deployed_routes(unkeyed, resolve_request(prompt="x", model="veo-3").routes)
    assert [r.adapter for r in routes] == ["runway"]  # Veo fails over to Runway's

    keyed = isolated_settings(**keys, vertex_credentials_file=key_file, vertex_region="global")
    assert endpoint(keyed, "vertex") == Endpoint(
        "https://aiplatform.googleapis.com/v1", str(key_file), emulated=False
    )
    adapters = build_adapters(keyed)
    assert set(adapters) == {"runway", "vertex"}
    assert server.minted == []  # no token is minted before the first call
    for adapter in adapters.values():
        await adapter.aclose()


def test_vertex_settings_refuse_what_vertex_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="vertex_output_uri"):
        isolated_settings(vertex_output_uri="s3://bucket/videos/")
    with pytest.raises(ValidationError, match="vertex_credentials_file"):
        isolated_settings(vertex_credentials_file=tmp_path / "missing.json")
    with pytest.raises(ValidationError, match="veo_platform"):
        isolated_settings(veo_platform="bedrock")
