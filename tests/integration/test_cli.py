"""The `reelay` CLI end to end: typer's `CliRunner` against a real API and worker (real
Temporal, S3 and the emulator), its `--json` checked against the API's own answers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from typer.testing import CliRunner, Result

from reelay.cli import app
from reelay.cli.views import usd
from reelay.settings import Settings
from reelay.temporal import connect
from reelay.tenants import hash_key
from tests.support import MakeStack, Receiver, Reply

T = TypeVar("T")

KEY = "rl_cli_operator_key"
TENANT = "cli-operator"
# A tenant of its own: its listing holds exactly the jobs made here.
TENANTS = f"""
[[tenants]]
id = "{TENANT}"
tier = "pro"
opening_balance_usd = 50.0
key_hashes = ["{hash_key(KEY)}"]
"""
Env = dict[str, str | None]
JOBS = "/v1/video/generations"


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tenants = tmp_path_factory.mktemp("cli") / "tenants.toml"
    tenants.write_text(TENANTS)
    return make_stack(tenants_file=tenants, webhook_allow_hosts=["127.0.0.1"]).settings


@pytest.fixture(scope="module")
def env(stack: Settings) -> Env:
    """The CLI's connection from its env vars; no Temporal UI settings of the developer's."""
    return {
        "REELAY_API_URL": stack.public_url,
        "REELAY_API_KEY": KEY,
        "REELAY_DEV_API_KEY": None,
        "REELAY_TEMPORAL_UI_URL": None,
        "REELAY_TEMPORAL_NAMESPACE": None,
    }


@pytest.fixture
def api(stack: Settings) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=stack.public_url, headers=headers, timeout=30) as client:
        yield client


def reelay(env: Env, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def json_of(result: Result) -> Any:
    """The command's stdout as JSON: it must have succeeded and printed nothing else there."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def eventually(check: Callable[[], T | None], within: float = 60) -> T:
    """`check()` once it is not None (the CLI is synchronous, so is this poll)."""
    deadline = time.monotonic() + within
    while (value := check()) is None:
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        time.sleep(0.1)
    return value


def unsigned(body: Any) -> Any:
    """`body` with the signed links' expiry and signature blanked: they change every second."""
    text = re.sub(r"expires=\d+&signature=[0-9a-f]+", "expires=-&signature=-", json.dumps(body))
    return json.loads(text)


@pytest.fixture(scope="module")
def made(env: Env) -> list[dict[str, Any]]:
    """Two jobs submitted and followed to the end by `reelay generate --wait --json`,
    oldest first."""
    finished = []
    for model in ("runway-gen3", "pika"):
        prompt = f"[emu gen=1] {model} over a harbour"
        result = reelay(
            env,
            "generate",
            prompt,
            "--model",
            model,
            "--duration",
            "2",
            "--wait",
            "--interval",
            "0.2",
            "--json",
        )
        finished.append(json_of(result))
    return finished


def test_generate_json_is_the_finished_job(made: list[dict[str, Any]], api: httpx.Client) -> None:
    for job in made:
        assert job["status"] == "complete"
        assert unsigned(job) == unsigned(api.get(f"{JOBS}/{job['id']}").json())


def listing_of(env: Env, made: list[dict[str, Any]]) -> dict[str, Any]:
    """`jobs list --json` once Temporal's visibility lists every job of `made` as complete."""

    def listed() -> dict[str, Any] | None:
        listing: dict[str, Any] = json_of(reelay(env, "jobs", "list", "--json"))
        statuses = {job["id"]: job["status"] for job in listing["data"]}
        return listing if all(statuses.get(job["id"]) == "complete" for job in made) else None

    return eventually(listed)


def test_jobs_list_json_is_the_api_listing(
    made: list[dict[str, Any]], env: Env, api: httpx.Client
) -> None:
    listing = listing_of(env, made)
    ids = [job["id"] for job in made]
    assert [job["id"] for job in listing["data"] if job["id"] in ids] == ids[::-1]  # newest first
    assert unsigned(listing) == unsigned(api.get(JOBS).json())


def test_jobs_list_filters_and_pages_as_the_api(
    made: list[dict[str, Any]], env: Env, api: httpx.Client
) -> None:
    runway, pika = made
    listing_of(env, made)

    def both(*args: str, **params: str | int) -> dict[str, Any]:
        """The CLI's listing for `args`, once it is checked to be the API's for `params`."""
        listing = json_of(reelay(env, "jobs", "list", "--json", *args))
        assert unsigned(listing) == unsigned(api.get(JOBS, params=params).json())
        return listing

    def ids(listing: dict[str, Any]) -> list[str]:
        return [job["id"] for job in listing["data"]]

    complete_pika = both("--status", "complete", "--model", "pika", status="complete", model="pika")
    assert ids(complete_pika) == [pika["id"]]
    assert ids(both("--status", "failed", status="failed")) == []
    assert ids(both("--app-id", "no-such-app", app_id="no-such-app")) == []
    after, before = runway["created_at"], "2999-01-01T00:00:00Z"
    window = both(
        "--created-after",
        after,
        "--created-before",
        before,
        created_after=after,
        created_before=before,
    )
    assert pika["id"] in ids(window)
    assert ids(both("--created-after", before, created_after=before)) == []

    first = both("--limit", "1", limit=1)
    assert len(first["data"]) == 1 and first["has_more"]
    cursor = first["next_cursor"]
    both("--limit", "1", "--cursor", cursor, limit=1, cursor=cursor)
    every = json_of(reelay(env, "jobs", "list", "--json", "--limit", "1", "--all"))
    assert ids(every) == ids(api.get(JOBS, params={"limit": 100}).json())
    assert every["has_more"] is False and "next_cursor" not in every

    table = reelay(env, "jobs", "list", "--limit", "1")
    assert table.exit_code == 0, table.output
    assert f"--cursor {cursor}" in table.stdout


def test_jobs_list_table_names_the_jobs_and_their_status(
    made: list[dict[str, Any]], env: Env
) -> None:
    listing_of(env, made)
    result = reelay(env, "jobs", "list")
    assert result.exit_code == 0, result.output
    for job in made:
        [row] = [line for line in result.stdout.splitlines() if job["id"] in line]
        assert "complete" in row and job["model"] in row


def test_jobs_list_refusal_prints_the_api_message(env: Env, api: httpx.Client) -> None:
    expected = api.get(JOBS, params={"status": "sleeping"})
    assert expected.status_code == 400
    result = reelay(env, "jobs", "list", "--status", "sleeping")
    assert result.exit_code == 1
    assert expected.json()["error"]["message"] in result.output
    assert "Traceback" not in result.output


def test_jobs_show_json_is_the_api_job(
    made: list[dict[str, Any]], env: Env, api: httpx.Client
) -> None:
    job_id = made[0]["id"]
    shown = json_of(reelay(env, "jobs", "show", job_id, "--json"))
    assert unsigned(shown) == unsigned(api.get(f"{JOBS}/{job_id}").json())


async def test_jobs_show_panel_links_the_job_workflow_in_the_temporal_ui(
    made: list[dict[str, Any]], env: Env, stack: Settings
) -> None:
    job = made[1]
    result = reelay(env, "jobs", "show", job["id"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for shown in (job["id"], "complete", job["perf"]["provider"], job["perf"]["model_used"]):
        assert shown in out
    assert usd(job["perf"]["cost_usd"]) in out
    assert job["video_url"].split("?")[0] in out
    assert f"http://127.0.0.1:8233/namespaces/default/workflows/{job['id']}" in out
    # The link's workflow is the job's: Temporal knows a workflow by that id.
    client = await connect(stack)
    described = await client.get_workflow_handle(job["id"]).describe()
    assert described.workflow_type == "VideoGenerationWorkflow"

    elsewhere = {**env, "REELAY_TEMPORAL_UI_URL": "http://ui.example:8080/"}
    moved = reelay(elsewhere, "jobs", "show", job["id"], "--namespace", "reelay")
    assert f"http://ui.example:8080/namespaces/reelay/workflows/{job['id']}" in moved.stdout


@pytest.fixture(scope="module")
def others(made: list[dict[str, Any]], stack: Settings) -> Iterator[dict[str, dict[str, Any]]]:
    """After `made`, finished: a job whose webhook is refused once then delivered (`hooked`)
    and a job of seed 001's dialect for app `cli-app` (`app`), as the API shows them."""
    auth = {"Authorization": f"Bearer {KEY}"}
    with (
        httpx.Client(base_url=stack.public_url, headers=auth, timeout=30) as api,
        Receiver([Reply(status=500)]) as receiver,
    ):
        hooked = api.post(
            JOBS,
            json={
                "prompt": "[emu gen=1] a lantern, hooked",
                "model": "luma-dream-machine",
                "duration_seconds": 5,
                "webhook_url": receiver.url(),
                "webhook_events": ["completed"],
            },
        ).json()["id"]
        app = api.post(
            JOBS,
            json={"model": "veo-3", "prompt": "[emu gen=1] an app's lion"},
            headers={"X-App-ID": "cli-app"},
        ).json()["id"]

        made_here = {"hooked": hooked, "app": app}

        def finished() -> dict[str, dict[str, Any]] | None:
            shown = {name: api.get(f"{JOBS}/{job}").json() for name, job in made_here.items()}
            hooks = shown["hooked"].get("webhooks") or [{"state": None}]
            done = hooks[0]["state"] == "delivered" and shown["app"]["status"] == "completed"
            return shown if done else None

        yield eventually(finished)


def test_jobs_show_lists_the_webhook_attempts(others: dict[str, dict[str, Any]], env: Env) -> None:
    job = others["hooked"]
    [delivery] = job["webhooks"]
    assert delivery["attempts"] == 2
    result = reelay(env, "jobs", "show", job["id"])
    assert result.exit_code == 0, result.output
    assert "webhook deliveries" in result.stdout
    [row] = [line for line in result.stdout.splitlines() if delivery["state"] in line]
    assert row.split()[:3] == [delivery["event"], delivery["state"], str(delivery["attempts"])]


def test_jobs_of_another_dialect_are_listed_by_app_and_shown(
    others: dict[str, dict[str, Any]], env: Env
) -> None:
    job = others["app"]  # seed 001's operation: no native fields
    listing = json_of(reelay(env, "jobs", "list", "--json", "--app-id", "cli-app"))
    assert [listed["id"] for listed in listing["data"]] == [job["id"]]
    result = reelay(env, "jobs", "show", job["id"])
    assert result.exit_code == 0, result.output
    for shown in (job["id"], job["status"], job["operation_name"]):
        assert shown in result.stdout
    assert f"/namespaces/default/workflows/{job['id']}" in result.stdout


def test_unknown_job_exits_non_zero_with_the_api_message(env: Env, api: httpx.Client) -> None:
    expected = api.get(f"{JOBS}/job_vid_nosuchjob")
    assert expected.status_code == 404
    line = f"error 404: {expected.json()['error']['message']}"
    for command in (["jobs", "show"], ["status"], ["cancel"]):
        readable = reelay(env, *command, "job_vid_nosuchjob")
        assert (readable.exit_code, readable.stdout.strip()) == (1, line), command
        # With --json stdout holds only the API's JSON: the error line goes to stderr.
        machine = reelay(env, *command, "job_vid_nosuchjob", "--json")
        assert (machine.exit_code, machine.stdout, machine.stderr.strip()) == (1, "", line)


def test_a_wrong_key_exits_non_zero_with_the_api_message(env: Env, stack: Settings) -> None:
    expected = httpx.get(
        f"{stack.public_url}/v1/account", headers={"Authorization": "Bearer rl_wrong"}
    )
    assert expected.status_code == 401
    result = reelay(env, "account", "--key", "rl_wrong")
    assert result.exit_code == 1
    assert expected.json()["error"]["message"] in result.output


def test_account_json_is_the_api_account(
    made: list[dict[str, Any]],
    others: dict[str, dict[str, Any]],
    env: Env,
    api: httpx.Client,
) -> None:
    jobs = len(made) + len(others)

    def settled() -> dict[str, Any] | None:
        account: dict[str, Any] = api.get("/v1/account").json()
        idle = account["running_jobs"] == account["queued_jobs"] == 0
        return account if idle and account["usage_today"]["jobs"] == jobs else None

    account = eventually(settled)
    assert json_of(reelay(env, "account", "--json")) == account
    assert account["usage_today_by_app"]["cli-app"]["jobs"] == 1

    table = reelay(env, "account")
    assert table.exit_code == 0, table.output
    for shown in (TENANT, usd(account["balance_usd"]), f"{jobs} jobs", "cli-app"):
        assert shown in table.stdout
    assert account["webhook_secret"] not in table.stdout


def test_models_json_is_the_api_catalog(env: Env, api: httpx.Client) -> None:
    catalog = api.get("/v1/models").json()
    assert json_of(reelay(env, "models", "--json")) == catalog
    table = reelay(env, "models")
    assert table.exit_code == 0, table.output
    for model in catalog["data"]:
        assert model["id"] in table.stdout


def test_base_url_and_key_options_override_the_env(env: Env, stack: Settings) -> None:
    nowhere: Env = {**env, "REELAY_API_URL": "http://127.0.0.1:9", "REELAY_API_KEY": "rl_wrong"}
    assert reelay(nowhere, "account", "--json").exit_code == 1
    direct = reelay(nowhere, "account", "--json", "--base-url", stack.public_url, "--key", KEY)
    assert json_of(direct)["tenant_id"] == TENANT


def test_cancel_stops_a_running_job(env: Env) -> None:
    """Last: it leaves a cancelled job in the tenant's listing."""
    job = json_of(reelay(env, "generate", "[emu gen=60] a slow tide", "--duration", "2", "--json"))
    result = reelay(env, "cancel", job["id"])
    assert result.exit_code == 0, result.output
    assert f"cancelling job {job['id']}" in result.stdout

    def cancelled() -> bool | None:
        shown = json_of(reelay(env, "jobs", "show", job["id"], "--json"))
        return True if shown["status"] == "cancelled" else None

    eventually(cancelled)
    again = reelay(env, "cancel", job["id"], "--json")
    assert again.exit_code == 1 and "already cancelled" in again.output
