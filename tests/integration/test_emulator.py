"""The provider emulator, run as a real server (`python -m emulator`) over a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import av
import httpx
import pytest

from emulator.config import EmulatorSettings
from emulator.directives import DirectiveError, Directives, parse_directives
from emulator.render import RenderCache
from reelay.settings import Settings

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]

FPS = 8
HEADERS = {"Authorization": "Bearer test-key", "X-Runway-Version": "2024-11-06"}
STATUS_ORDER = ["PENDING", "RUNNING", "SUCCEEDED"]
FAST = "[emu queue=0 gen=0.2]"


def wait_for(check: Callable[[], T | None], *, timeout: float = 10.0, what: str = "") -> T:
    """Call `check` every 50 ms until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result is not None:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("emulator")
    # No inherited REELAY_* variable and no `.env` (cwd is the data dir): only what is set here.
    # The emulator is not installed (not in the wheel): it runs from the source tree.
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("REELAY_")}
    env = {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "REELAY_EMULATOR_HOST": "127.0.0.1",
        "REELAY_EMULATOR_PORT": str(port),
        "REELAY_EMULATOR_DATA_DIR": str(data_dir),
        "REELAY_EMULATOR_GENERATION_SECONDS": "0.5",
        "REELAY_EMULATOR_FPS": str(FPS),
        "REELAY_EMULATOR_RENDER_SCALE": "4",
    }
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator"],
        env=env,
        cwd=data_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool | None:
        assert proc.poll() is None, (data_dir / "server.log").read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200 or None
        except httpx.TransportError:
            return None

    try:
        wait_for(healthy, timeout=30, what="emulator /healthz")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield http
        http.post("/_emulator/reset").raise_for_status()


def unique(text: str) -> str:
    return f"{text} #{uuid.uuid4().hex[:8]}"


def create(
    client: httpx.Client, prompt: str, *, endpoint: str = "text_to_video", **fields: Any
) -> httpx.Response:
    body = {"model": "gen4.5", "promptText": prompt, "ratio": "1280:720", "duration": 2, **fields}
    return client.post(f"/runway/v1/{endpoint}", json=body, headers=HEADERS)


def create_id(client: httpx.Client, prompt: str, **fields: Any) -> str:
    response = create(client, prompt, **fields)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def get_task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"/runway/v1/tasks/{task_id}", headers=HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_status(client: httpx.Client, task_id: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get_task(client, task_id)
        return body if body["status"] == status else None

    return wait_for(check, what=f"task {task_id} to be {status}")


def poll_to_end(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    """Every task body seen until a terminal status."""
    seen: list[dict[str, Any]] = []

    def terminal() -> list[dict[str, Any]] | None:
        seen.append(get_task(client, task_id))
        return seen if seen[-1]["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return wait_for(terminal, what=f"task {task_id} to finish")


def output_url(client: httpx.Client, prompt: str, **fields: Any) -> tuple[str, str]:
    task_id = create_id(client, prompt, **fields)
    final = poll_to_end(client, task_id)[-1]
    assert final["status"] == "SUCCEEDED", final
    return task_id, str(final["output"][0])


GATEWAY_PACKAGES = {"api", "workflows", "activities", "providers", "reelay", "worker"}


def test_the_emulator_imports_nothing_of_the_gateway() -> None:
    """A fresh interpreter loads every emulator module; no gateway module may come along."""
    script = (
        "import pkgutil, sys, importlib, emulator\n"
        "for info in pkgutil.iter_modules(emulator.__path__):\n"
        "    importlib.import_module(f'emulator.{info.name}')\n"
        "print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "emulator.runway" in loaded
    assert not {name.split(".")[0] for name in loaded} & GATEWAY_PACKAGES


def test_the_emulator_reads_the_variables_the_gateway_stack_passes() -> None:
    """devstack hands the emulator the gateway's `Settings` as `REELAY_*` variables; each of
    the emulator's own settings must be one of them (or it would never be set)."""
    passed = {f"REELAY_{name.upper()}" for name in Settings.model_fields}
    for name, spec in EmulatorSettings.model_fields.items():
        choices = getattr(spec.validation_alias, "choices", None)
        names = set(choices) if choices else {f"REELAY_EMULATOR_{name.upper()}"}
        assert names & passed, name


def test_happy_path_renders_the_requested_video(client: httpx.Client, tmp_path: Path) -> None:
    prompt = unique("a fox in the snow [emu queue=0.2 gen=1.2 steps=4]")
    task_id = create_id(client, prompt, ratio="720:1280", duration=3)
    uuid.UUID(task_id, version=4)

    bodies = poll_to_end(client, task_id)
    statuses = [b["status"] for b in bodies]
    assert statuses[-1] == "SUCCEEDED"
    assert "RUNNING" in statuses
    assert [STATUS_ORDER.index(s) for s in statuses] == sorted(
        STATUS_ORDER.index(s) for s in statuses
    )
    progress = [b["progress"] for b in bodies if b["status"] == "RUNNING"]
    assert all(0 <= p < 1 for p in progress)
    assert progress == sorted(progress)
    assert all(b["createdAt"].endswith("Z") for b in bodies)
    assert "progress" not in bodies[-1]
    [url] = bodies[-1]["output"]
    assert url.startswith(f"{client.base_url}/runway/files/{task_id}.mp4?")

    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    video = tmp_path / "out.mp4"
    video.write_bytes(response.content)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 3) <= 0.05
        assert stream.frames == 3 * FPS
        assert (stream.width, stream.height) == (180, 320)  # 720:1280 at render_scale 4
        assert stream.width * 1280 == stream.height * 720


def test_task_is_pending_then_cancelled(client: httpx.Client) -> None:
    task_id = create_id(client, unique("[emu queue=30]"))
    pending = get_task(client, task_id)
    assert pending["status"] == "PENDING"
    assert "progress" not in pending

    assert client.delete(f"/runway/v1/tasks/{task_id}", headers=HEADERS).status_code == 204
    assert get_task(client, task_id)["status"] == "CANCELLED"


def test_running_task_reports_progress_and_can_be_cancelled(client: httpx.Client) -> None:
    task_id = create_id(client, unique("[emu queue=0 gen=30 steps=4]"))
    running = wait_for_status(client, task_id, "RUNNING")
    assert running["progress"] == 0.0

    assert client.delete(f"/runway/v1/tasks/{task_id}", headers=HEADERS).status_code == 204
    cancelled = get_task(client, task_id)
    assert cancelled["status"] == "CANCELLED"
    assert "output" not in cancelled


def test_cancel_does_not_change_a_finished_task(client: httpx.Client) -> None:
    task_id, _ = output_url(client, unique(FAST))
    assert client.delete(f"/runway/v1/tasks/{task_id}", headers=HEADERS).status_code == 204
    assert get_task(client, task_id)["status"] == "SUCCEEDED"


def test_unknown_task_is_404(client: httpx.Client) -> None:
    missing = f"/runway/v1/tasks/{uuid.uuid4()}"
    response = client.get(missing, headers=HEADERS)
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}
    assert client.delete(missing, headers=HEADERS).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer k"}, 400),
        ({"Authorization": "Bearer k", "X-Runway-Version": "2023-01-01"}, 400),
        ({"X-Runway-Version": "2024-11-06"}, 401),
        ({"Authorization": "Bearer", "X-Runway-Version": "2024-11-06"}, 401),
        ({"Authorization": "Basic abc", "X-Runway-Version": "2024-11-06"}, 401),
    ],
)
def test_auth_and_version_headers_are_required(
    client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 2}
    response = client.post("/runway/v1/text_to_video", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ratio": "16:9"}, "ratio"),
        ({"duration": 11}, "duration"),
        ({"duration": 1}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"duration": 4.5}, "duration"),
        ({"model": "gen3a_turbo"}, "model"),
        ({"model": "gen4_turbo"}, "model"),
        ({"model": "veo3", "duration": 8}, "model"),
        ({"ratio": "1920:1080"}, "ratio"),
        ({"ratio": "960:960"}, "ratio"),
        ({"negativePrompt": "blur"}, "negativePrompt"),
        ({"model": "veo3.1", "duration": 8, "ratio": "960:960"}, "ratio"),
        ({"model": "veo3.1_fast", "duration": 5}, "duration"),
        ({"promptText": ""}, "promptText"),
        ({"promptText": "x" * 1001}, "promptText"),
        ({"promptText": "[emu gen=soon]"}, "promptText"),
        ({"seed": -1}, "seed"),
        ({"audio": "yes"}, "audio"),
    ],
)
def test_invalid_create_is_400_naming_the_field(
    client: httpx.Client, fields: dict[str, Any], field: str
) -> None:
    prompt = fields.pop("promptText", "a valid prompt")
    response = create(client, prompt, **fields)
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_gen4_turbo_is_text_to_video_refused_with_the_reason(client: httpx.Client) -> None:
    response = create(client, "a cat", model="gen4_turbo")
    assert response.status_code == 400
    assert "text_to_video" in response.json()["error"]


@pytest.mark.parametrize(
    "image",
    [
        "https://example.com/cat.png",
        "data:image/png;base64,iVBORw0KGgo=",
        [{"uri": "https://example.com/a.png", "position": "first"}],
    ],
)
def test_image_to_video_accepts_each_image_form(client: httpx.Client, image: object) -> None:
    response = create(
        client, "a cat", endpoint="image_to_video", model="gen4_turbo", promptImage=image
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("image", [None, "ftp://x/cat.png", [], [{"uri": "x", "position": "mid"}]])
def test_image_to_video_needs_a_prompt_image(client: httpx.Client, image: object) -> None:
    response = create(client, "a cat", endpoint="image_to_video", promptImage=image)
    assert response.status_code == 400
    assert "promptImage" in response.json()["error"]


@pytest.mark.parametrize(
    ("directive", "code"),
    [("refuse", "SAFETY.INPUT.TEXT"), ("fail=internal", "INTERNAL.BAD_OUTPUT.CODE01")],
)
def test_failing_tasks(client: httpx.Client, directive: str, code: str) -> None:
    task_id = create_id(client, unique(f"[EMU queue=0 gen=0.1 {directive}]"))
    final = poll_to_end(client, task_id)[-1]
    assert final["status"] == "FAILED"
    assert final["failureCode"] == code
    assert final["failure"]
    assert "output" not in final


def test_refusal_message(client: httpx.Client) -> None:
    final = poll_to_end(client, create_id(client, unique(f"{FAST} [emu refuse]")))[-1]
    assert final["failure"] == "Content moderation: the prompt was flagged"


def test_create_429_with_retry_after(client: httpx.Client) -> None:
    prompt = unique(f"{FAST} [emu create_429=1 retry_after=2]")
    throttled = create(client, prompt)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert throttled.json()["error"]
    assert create(client, prompt).status_code == 200


def test_create_5xx(client: httpx.Client) -> None:
    prompt = unique(f"{FAST} [emu create_5xx=2]")
    for _ in range(2):
        failed = create(client, prompt)
        assert failed.status_code == 503
        assert failed.json() == {"error": "Service temporarily unavailable"}
    assert create(client, prompt).status_code == 200
    assert create(client, unique(FAST)).status_code == 200  # other prompts are unaffected


def test_poll_5xx(client: httpx.Client) -> None:
    task_id = create_id(client, unique(f"{FAST} [emu poll_5xx=2]"))
    codes = [client.get(f"/runway/v1/tasks/{task_id}", headers=HEADERS).status_code for _ in "abc"]
    assert codes == [502, 502, 200]


def test_truncated_download_delivers_fewer_bytes_than_announced(client: httpx.Client) -> None:
    task_id, url = output_url(client, unique(f"{FAST} [emu truncate=1]"))
    received = bytearray()
    with httpx.stream("GET", url) as response:
        assert response.status_code == 200
        announced = int(response.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert 0 < len(received) < announced

    full = httpx.get(url)
    assert len(full.content) == announced
    assert full.content.startswith(bytes(received))
    assert client.get("/_emulator/stats").json()["downloads"] == {task_id: 1}


def test_slow_download_delivers_the_whole_file(client: httpx.Client) -> None:
    _, plain = output_url(client, unique(FAST))
    _, slow = output_url(client, unique(f"{FAST} [emu slow=400000]"))
    assert httpx.get(slow).content == httpx.get(plain).content


def test_range_request(client: httpx.Client) -> None:
    _, url = output_url(client, unique(FAST))
    full = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-99/{len(full)}"
    assert part.content == full[10:100]


def test_forged_output_urls_are_403(client: httpx.Client) -> None:
    _, url = output_url(client, unique(FAST))
    parsed = httpx.URL(url)
    exp, sig = parsed.params["exp"], parsed.params["sig"]
    forged_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    for params in (
        {"exp": exp, "sig": forged_sig},
        {"exp": str(int(exp) + 3600), "sig": sig},
        {"exp": "1", "sig": sig},
        {},
    ):
        assert httpx.get(parsed.copy_with(params=params)).status_code == 403


def test_expired_output_url_is_403(client: httpx.Client) -> None:
    client.post("/_emulator/config", json={"output_ttl_seconds": 0}).raise_for_status()
    _, url = output_url(client, unique(FAST))
    response = httpx.get(url)
    assert response.status_code == 403
    assert "expired" in response.json()["error"]


def test_submissions_and_stats(client: httpx.Client) -> None:
    prompts = [unique(f"{FAST} first"), unique(f"{FAST} second")]
    ids = [create_id(client, prompts[0]), create_id(client, prompts[1], ratio="720:1280")]
    assert create(client, "bad", ratio="1:1").status_code == 400

    listed = client.get("/_emulator/submissions", params={"provider": "runway"}).json()
    assert [(s["task_id"], s["prompt"]) for s in listed] == list(zip(ids, prompts, strict=True))
    assert listed[1] | {"received_at": None} == {
        "provider": "runway",
        "task_id": ids[1],
        "model": "gen4.5",
        "prompt": prompts[1],
        "duration": 2,
        "ratio": "720:1280",
        "received_at": None,
        "credits": 24,
        "image": False,
    }
    assert listed[0]["received_at"].endswith("Z")
    assert client.get("/_emulator/submissions", params={"provider": "luma"}).json() == []

    stats = client.get("/_emulator/stats").json()
    assert stats == {"create_attempts": {"runway": 3}, "accepted": {"runway": 2}, "downloads": {}}

    client.post("/_emulator/reset").raise_for_status()
    assert client.get("/_emulator/submissions").json() == []
    assert client.get("/_emulator/stats").json() == {
        "create_attempts": {},
        "accepted": {},
        "downloads": {},
    }
    assert client.get(f"/runway/v1/tasks/{ids[0]}", headers=HEADERS).status_code == 404


def test_outage_and_runtime_defaults(client: httpx.Client) -> None:
    config = client.post("/_emulator/config", json={"outages": {"runway": 503}}).json()
    assert config["outages"] == {"runway": 503}
    down = create(client, unique("during the outage"))
    assert down.status_code == 503
    assert down.json()["error"]

    patch = {"outages": {}, "generation_seconds": 0, "queue_seconds": 0}
    client.post("/_emulator/config", json=patch).raise_for_status()
    task_id = create_id(client, unique("after the outage"))
    wait_for_status(client, task_id, "SUCCEEDED")

    assert client.post("/_emulator/config", json={"steps": 0}).status_code == 400
    assert client.post("/_emulator/config", json={"outages": {"runway": 200}}).status_code == 400
    assert client.post("/_emulator/config", json={"nonsense": 1}).status_code == 400
    assert client.get("/_emulator/submissions").json()[0]["prompt"].startswith("after")


def test_reset_restores_start_up_config(client: httpx.Client) -> None:
    before = client.get("/_emulator/config").json()
    client.post("/_emulator/config", json={"steps": 3, "outages": {"runway": 500}})
    client.post("/_emulator/reset").raise_for_status()
    assert client.get("/_emulator/config").json() == before
    assert before["outages"] == {}
    assert before["generation_seconds"] == 0.5  # from REELAY_EMULATOR_GENERATION_SECONDS


def test_parse_directives() -> None:
    parsed = parse_directives("a [EMU gen=2.5, steps=4] cat [emu refuse create_429=2 Slow=100]")
    assert parsed == Directives(gen=2.5, steps=4, refuse=True, create_429=2, slow=100)
    assert parse_directives("a plain prompt [emulsion]") == Directives()
    assert parse_directives(None) == Directives()
    with pytest.raises(DirectiveError, match="bogus"):
        parse_directives("[emu bogus=1]")
    with pytest.raises(DirectiveError, match="fail"):
        parse_directives("[emu fail=sometimes]")


def test_render_cache_encodes_each_size_once_under_concurrency(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path, workers=4)
    jobs = []

    def request() -> None:
        jobs.append(cache.get(width=64, height=36, duration_seconds=1, fps=4))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paths = {job.result(timeout=30) for job in jobs}
    cache.shutdown()
    assert len(paths) == 1
    assert [p.name for p in tmp_path.iterdir()] == [next(iter(paths)).name]
