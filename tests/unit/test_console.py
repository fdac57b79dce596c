"""What the Temporal UI shows of jobs, batches and deliveries (`workflows.console`): the
facts an operator needs, nothing secret or signed, within Temporal's size limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from reelay.batches import BatchCounts, BatchInput, BatchState, BatchStatus, BatchView
from reelay.jobs import (
    ImageRef,
    JobError,
    JobSpec,
    JobStatus,
    JobView,
    Route,
    SegmentRole,
    StoredVideo,
    WebhookTarget,
)
from reelay.webhooks import WebhookDelivery, WebhookDeliveryStatus, new_delivery
from workflows import console

AT = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
TOKEN = "s3cr3t-t0ken-4e7f"
WEBHOOK = f"https://hooks.example.com/reelay/in?token={TOKEN}"
SIGNED_IMAGE = (
    "https://bucket.s3.amazonaws.com/img.png?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAXYZ"
)
LONG_PROMPT = (
    "A serene mountain landscape at dawn, mist rolling over the pines, "
    "cinematic drone shot slowly rising above the ridge to reveal a hidden lake "
    "TAIL-MARKER-THAT-MUST-NOT-APPEAR " * 20
)
SECRETS = (TOKEN, "X-Amz-Signature", "deadbeefcafe", "AKIAXYZ", "TAIL-MARKER")


def spec(**update: object) -> JobSpec:
    job = JobSpec(
        job_id="job_vid_0123456789abcdef",
        tenant_id="acme",
        request_id="req_vid_42",
        model="veo-3",
        requested_model="veo-3",
        routes=[
            Route(adapter="gemini", upstream_model="veo-3.0-generate-001"),
            Route(adapter="runway", upstream_model="veo3.1", clip_seconds=10),
        ],
        prompt=LONG_PROMPT + f" see {SIGNED_IMAGE}",
        negative_prompt=f"no text {SIGNED_IMAGE}",
        duration_seconds=8,
        resolution="1080p",
        aspect_ratio="16:9",
        image=ImageRef(key="media/acme/img.png", content_type="image/png"),
        app_id="my-app",
        webhook=WebhookTarget(url=WEBHOOK, events=["completed", "failed"]),
        price_micro_usd_per_second=350_000,
        created_at=AT,
        deadline_seconds=1800,
        batch_id="batch_" + "a" * 32,
    )
    return job.model_copy(update=update)


def view(**update: object) -> JobView:
    return JobView.from_spec(spec()).model_copy(update=update)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "?token" not in text and "hooks.example.com/reelay" not in text


def test_a_jobs_summary_names_model_length_tenant_and_a_prompt_excerpt() -> None:
    summary = console.job_summary(spec())
    assert summary.startswith("veo-3 8 s 1080p 16:9")
    assert "tenant acme app my-app" in summary
    assert "A serene mountain" in summary
    assert "\n" not in summary
    assert len(summary.encode()) <= console.SUMMARY_MAX_BYTES
    assert_clean(summary)


def test_a_jobs_details_show_the_request_and_routes_but_no_secret() -> None:
    details = console.job_details(spec())
    for fact in (
        "**veo-3 8 s 1080p 16:9**",
        "tenant `acme`, app `my-app`, dialect `native`",
        "gemini `veo-3.0-generate-001`",
        "runway `veo3.1` (makes 10 s, trimmed)",
        "from a source image",
        "webhook to `hooks.example.com`: completed, failed",
        "estimate $2.80",
        "batch `batch_",
        "`req_vid_42`",
    ):
        assert fact in details, fact
    assert_clean(details)
    assert "media/acme/img.png" not in details  # the source image is named, never linked
    excerpt = details.split("- prompt: ", 1)[1].split("\n", 1)[0]
    assert len(excerpt) < console.PROMPT_EXCERPT + 20  # cut to about 80 characters
    assert len(details.encode()) <= console.DETAILS_MAX_BYTES


def test_a_url_in_a_prompt_keeps_its_host_only() -> None:
    job = spec(prompt=f"look at {SIGNED_IMAGE} and animate it")
    details = console.job_details(job)
    assert "https://bucket.s3.amazonaws.com/…" in details.replace("\\", "")
    assert_clean(details)


def test_a_segment_leads_with_its_place_in_the_chain() -> None:
    segment = spec(
        job_id="job_vid_x:segment:1",
        segment=SegmentRole(parent_id="job_vid_x", index=1, keep_last_frame=True),
        continue_from="operations/abc123",
        segments=[],
    )
    summary = console.job_summary(segment, segments_total=4)
    assert summary.startswith("segment 2 of 4 of job_vid_x · veo-3 8 s")
    assert "segment 2 of job_vid_x" in console.job_summary(segment)
    details = console.job_details(segment, segments_total=4)
    assert "segment 2 of 4 of job_vid_x" in details
    assert "continues provider task `operations/abc123`" in details


def test_a_chain_lists_its_segments() -> None:
    chain = spec(duration_seconds=32, segments=[8, 8, 8, 8])
    assert "4 segments" in console.job_summary(chain)
    assert "chain of 4 segments: 8 s + 8 s + 8 s + 8 s" in console.job_details(chain)


def test_markdown_in_user_text_cannot_make_links_images_or_html() -> None:
    job = spec(
        prompt="![x](https://tracker.example/p.gif) [click](javascript:alert(1)) <img src=x>",
        app_id="[app](https://evil.example/?k=1)",
    )
    for text in (console.job_summary(job), console.job_details(job)):
        assert "k=1" not in text
        outside_code = re.sub(r"`[^`]*`", "", text)
        # No unescaped `[` (links, images) or `<` (HTML) outside code spans.
        assert re.search(r"(?<!\\)[\[<]", outside_code) is None, outside_code


def test_summaries_stay_within_temporals_limits_whatever_the_input() -> None:
    huge = "ü" * 5000  # two bytes a character: cut on a character boundary
    job = spec(model=huge, tenant_id=huge, app_id=huge, prompt=huge, requested_model=huge)
    texts = [
        console.job_summary(job),
        console.validate_summary(job),
        console.submit_summary(Route(adapter=huge, upstream_model=huge)),
        console.poll_summary(Route(adapter="runway", upstream_model="x"), huge),
    ]
    for text in texts:
        assert len(text.encode()) <= console.SUMMARY_MAX_BYTES
        text.encode().decode()  # valid UTF-8
    many_routes = spec(routes=[Route(adapter="fal", upstream_model="m" * 100)] * 500)
    assert len(console.job_details(many_routes).encode()) <= console.DETAILS_MAX_BYTES


def test_current_details_show_state_progress_provider_task_and_next_poll() -> None:
    running = view(
        status=JobStatus.PROCESSING,
        progress=0.45,
        provider="runway",
        model_used="gen4.5",
        provider_task_id="3f9a0c1e-7b2d-4c1a-9f00-1234567890ab",
        eta_seconds=12.4,
    )
    text = console.job_current_details(
        running, next_poll_at=datetime(2026, 12, 2, 13, 0, 5, tzinfo=UTC)
    )
    assert text.startswith("**processing** 45 % · `runway` `gen4.5`")
    assert "provider task `3f9a0c1e-7b2d-4c1a-9f00-1234567890ab`" in text
    assert "next poll 2026-12-02 13:00:05 UTC, ETA ~12 s" in text
    assert text.endswith("\n- veo-3 8 s 1080p for tenant acme")  # what it is, after continue-as-new
    done = view(
        status=JobStatus.FAILED,
        error=JobError(code="content_refused", message=f"refused, see {SIGNED_IMAGE}"),
    )
    failed = console.job_current_details(done, next_poll_at=None)
    assert "error `content_refused`" in failed and "next poll" not in failed
    assert_clean(failed)


def test_a_fal_handle_shows_its_request_id_not_its_urls() -> None:
    handle = (
        '{"request_id":"req-77","status_url":"https://queue.fal.run/x/requests/req-77/status",'
        '"response_url":"https://queue.fal.run/x/requests/req-77","cancel_url":"https://q/c"}'
    )
    text = console.job_current_details(view(provider_task_id=handle), next_poll_at=None)
    assert "provider task `req-77`" in text and "queue.fal.run" not in text
    poll = console.poll_summary(Route(adapter="fal", upstream_model="pika/v2.2"), handle)
    assert poll == "poll fal task req-77"


def test_a_stored_video_and_its_cost_show() -> None:
    video = StoredVideo(
        key="job_vid_x",
        sha256="ab" * 32,
        size_bytes=1,
        width=1920,
        height=1080,
        duration_seconds=8.0,
    )
    text = console.job_current_details(
        view(status=JobStatus.COMPLETED, progress=1.0, video=video, cost_micro_usd=800_000),
        next_poll_at=None,
    )
    assert "video 8.0 s 1920x1080" in text and "cost $0.80" in text


def test_activity_summaries() -> None:
    veo = Route(adapter="gemini", upstream_model="veo-3.0-generate-001")
    runway = Route(adapter="runway", upstream_model="gen4.5", clip_seconds=10)
    assert console.submit_summary(veo) == "submit to gemini veo-3.0-generate-001"
    assert (
        console.poll_summary(runway, "abcd1234-5678-90ef-aaaa") == "poll runway task abcd1234-567…"
    )
    assert console.cancel_summary(runway, "abcd") == "cancel runway task abcd"
    assert console.store_summary(spec(), veo) == "store 8.0 s 1080p"
    assert console.store_summary(spec(), runway) == "store 8.0 s 1080p (trimmed from 10 s)"
    chain = spec(duration_seconds=30, segments=[8, 8, 8, 8])
    assert console.stitch_summary(chain) == "stitch 4 segments into 30.0 s 1080p"
    assert console.settle_summary("job_x", 800_000) == "settle job_x at $0.80"
    assert console.validate_summary(spec()) == "validate veo-3 8 s 1080p 16:9"


def batch_input(**update: object) -> BatchInput:
    batch = BatchInput(
        tenant_id="acme",
        input_key="batches/batch_x/input.jsonl",
        concurrency=16,
        max_cost_usd=50,
        webhook_url=WEBHOOK,
    )
    return batch.model_copy(update=update)


def test_a_batch_shows_its_file_concurrency_and_max_cost() -> None:
    summary = console.batch_summary(batch_input())
    assert summary == (
        "batch of `batches/batch_x/input.jsonl` · tenant acme · 16 at once · max $50.00"
    )
    continued = batch_input(state=BatchState(lines=1200, runs=2))
    assert "(1200 lines)" in console.batch_summary(continued)
    details = console.batch_details(continued)
    assert "up to 16 lines running at once per provider" in details
    assert "max cost $50.00" in details and "run 2 (continued as new)" in details
    assert "end reported to `hooks.example.com`" in details
    assert_clean(details)
    assert "max cost none" in console.batch_details(batch_input(max_cost_usd=None))


def test_a_running_batch_shows_its_counts() -> None:
    batch_view = BatchView(
        batch_id="batch_x",
        tenant_id="acme",
        input_key="k",
        status=BatchStatus.PAUSED,
        request_counts=BatchCounts(total=10, completed=3, failed=1, running=2, queued=4),
        concurrency=2,
        max_cost_usd=None,
        on_invalid_line="skip",
        cost_micro_usd=1_200_000,
        estimated_micro_usd=4_000_000,
        created_at=AT,
        started_at=AT,
        completed_at=None,
        pause_reason="insufficient credits",
    )
    text = console.batch_current_details(batch_view)
    assert text.startswith("**paused** · 10 lines · batch of `k` · 2 at once\n")
    assert "3 completed, 1 failed, 0 cancelled, 2 running, 4 queued" in text
    assert "cost $1.20 of an estimated $4.00" in text and "paused: insufficient credits" in text
    assert console.batch_notify_summary(WEBHOOK, batch_view) == (
        "notify `hooks.example.com`: batch paused"
    )
    assert console.batch_page_summary("validate", 501, 500) == "validate lines 501-1000"
    assert console.batch_page_summary("validate", 1, None) == "validate every line"
    assert console.batch_line_summary(17, "job_vid_1") == "run line 17 as job_vid_1"
    assert console.batch_funds_summary(12_000_000) == "check funds for $12.00"


def delivery() -> WebhookDelivery:
    return new_delivery(
        job_id="job_vid_x",
        tenant_id="acme",
        url=WEBHOOK,
        event="progress",
        data={"id": "job_vid_x"},
        at=AT,
        sequence=3,
    )


def test_a_webhook_delivery_shows_event_job_and_host_only() -> None:
    hook = delivery()
    assert console.webhook_summary(hook) == (
        "video.progress #3 of job_vid_x to `hooks.example.com`"
    )
    details = console.webhook_details(hook)
    assert "`msg_job_vid_x_progress_3`" in details and "for 24 h" in details
    assert console.webhook_attempt_summary(hook, 2) == (
        "deliver video.progress #3 to `hooks.example.com` (attempt 2)"
    )
    status = WebhookDeliveryStatus(
        message_id=hook.message_id,
        event="progress",
        attempts=2,
        last_status_code=503,
        last_error=f"HTTP 503 from {WEBHOOK}",
        next_attempt_at=AT,
    )
    current = console.webhook_current_details(status)
    assert "**delivering** after 2 attempt(s)" in current and "next attempt 2026-12-02" in current
    for text in (console.webhook_summary(hook), details, current):
        assert_clean(text)


@pytest.mark.parametrize("url", ["not a url", "https://[::1/x?token=s3cr3t-t0ken-4e7f"])
def test_an_unparsable_webhook_url_is_not_rendered(url: str) -> None:
    hook = delivery().model_copy(update={"url": url})
    assert TOKEN not in console.webhook_summary(hook)
    assert "not a url" not in console.webhook_summary(hook)


def test_the_legacy_account_says_what_it_is() -> None:
    assert "opening balance $50.00" in console.account_details("acme", 50_000_000)
