"""Every side effect of a job. Each activity is safe to retry after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import urllib3.exceptions
from minio import Minio
from minio.error import MinioException, S3Error
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.downloads import download_to
from activities.errors import RETRYABLE_TYPE, STORAGE_TYPE, TURNS_TAKEN_TYPE, provider_errors
from activities.inputs import ProviderTaskRef, StitchRequest, StoreRequest, SubmitRequest
from activities.media import (
    InvalidVideoError,
    VideoInfo,
    last_frame_png,
    probe_video,
    stitch_videos,
    trim_video,
    write_thumbnail,
)
from providers.base import (
    FindsSubmitted,
    ProviderAdapter,
    ProviderTaskStatus,
    SourceImage,
    TaskState,
)
from providers.catalog import CatalogError, check_job
from providers.errors import ProviderError
from reelay.callbacks import callback_url
from reelay.jobs import ImageRef, JobSpec, Route, StoredVideo
from reelay.settings import Settings
from reelay.storage import last_frame_key, presigned_get, thumbnail_key, video_key

log = structlog.get_logger()

HEARTBEAT_EVERY_SECONDS = 3.0
CHUNK_BYTES = 1 << 20
TRIM_TOLERANCE_SECONDS = 0.05
_META_PREFIX = "x-amz-meta-"
# How far a provider's clock may be behind ours when it stamps a task's creation.
SUBMIT_CLOCK_SKEW = timedelta(seconds=30)


class JobActivities:
    def __init__(self, settings: Settings, adapters: dict[str, ProviderAdapter], s3: Minio) -> None:
        self._settings = settings
        self._adapters = adapters
        self._s3 = s3
        self._bucket = settings.s3_bucket
        self._part_size = settings.s3_part_size_mb * 1024 * 1024
        # Local submits run in the workflow worker's slots: as many at once per provider as
        # one of its submit queue's workers takes (`provider_concurrent_submits`).
        self._local_submits = {
            provider: asyncio.Semaphore(settings.provider_concurrent_submits)
            for provider in adapters
        }

    def _adapter(self, route: Route) -> ProviderAdapter:
        try:
            return self._adapters[route.adapter]
        except KeyError:
            raise ApplicationError(
                f"no adapter for provider {route.adapter!r}",
                type="invalid_request",
                non_retryable=True,
            ) from None

    @activity.defn
    async def validate_job(self, job: JobSpec) -> None:
        """Re-check a job against today's catalog (backfills start workflows without the API).
        Runs started since `lean-jobs` check at their first submit (`SubmitRequest.check`)."""
        self._check(job)

    def _check(self, job: JobSpec) -> None:
        try:
            check_job(job)
        except CatalogError as exc:
            raise ApplicationError(exc.message, type="invalid_request", non_retryable=True) from exc
        for route in job.routes:
            self._adapter(route)

    @activity.defn
    async def submit_to_provider(self, request: SubmitRequest) -> str:
        """Create the provider task, heartbeating so a lost worker is noticed in seconds.
        As a local activity (a route's `submit_locally`) it heartbeats nothing, and takes one
        of the provider's `provider_concurrent_submits` turns in this worker: with none free
        it fails at once (`TURNS_TAKEN_TYPE`), and the workflow submits through the queue.

        A retried attempt's predecessor may have reached the provider before it was lost.
        Where the provider lists its tasks (`FindsSubmitted`: Luma, Replicate) the retry
        looks for that task first and returns it instead of creating another; the lookup is
        best effort (a provider that does not answer it is submitted to as before). Runway,
        fal and Veo (Gemini, Vertex AI) list nothing to find it by: there a worker lost
        between the provider's accepting the create and the activity's completion reaching
        Temporal (the create's round trip, well under a second) leaves a second task upstream,
        on the same route, unpolled and never cancelled (providers/README.md, "Submitted
        twice").
        """
        adapter = self._adapter(request.route)
        if not activity.info().is_local:
            return await self._submit(request, adapter)
        turns = self._local_submits[request.route.adapter]
        if turns.locked():
            raise ApplicationError(  # benign: the SDK logs it at DEBUG, not as a failure
                f"every local submit turn for {request.route.adapter} is taken",
                type=TURNS_TAKEN_TYPE,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        async with turns:
            return await self._submit(request, adapter)

    async def _submit(self, request: SubmitRequest, adapter: ProviderAdapter) -> str:
        job, route = request.job, request.route
        if request.check:
            self._check(job)
        info = activity.info()
        async with heartbeating({"phase": "loading"}) as progress:
            image = await self._source_image(job.image) if job.image is not None else None
            callback = callback_url(self._settings, route.adapter, job.job_id)
            if info.attempt > 1:
                found = await _find_submitted(adapter, request, image, callback)
                if found is not None:
                    log.info("provider task found, left by a lost attempt", task_id=found)
                    return found
            progress["phase"] = "sending"
            with provider_errors():
                task_id = await adapter.submit(job, route, image=image, callback_url=callback)
        # The job's one line at INFO: what support asks the provider about.
        log.info("provider task created", task_id=task_id, upstream_model=route.upstream_model)
        return task_id

    async def _source_image(self, ref: ImageRef) -> SourceImage:
        def load() -> SourceImage:
            response = self._s3.get_object(self._bucket, ref.key)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
            url = presigned_get(self._settings, ref.key, timedelta(hours=6))
            return SourceImage(url=url, content_type=ref.content_type, data=data)

        with storage_errors():
            return await asyncio.to_thread(load)

    @activity.defn
    async def poll_provider(self, task: ProviderTaskRef) -> ProviderTaskStatus:
        with provider_errors():
            status = await self._adapter(task.route).poll(task.route, task.task_id)
        # The store step asks for a fresh output URL; keep signed URLs out of history.
        return status.model_copy(update={"output_url": None})

    @activity.defn
    async def cancel_at_provider(self, task: ProviderTaskRef) -> None:
        with provider_errors():
            await self._adapter(task.route).cancel(task.route, task.task_id)

    @activity.defn
    async def store_video(self, request: StoreRequest) -> StoredVideo:
        """Store the video of the finished provider task `request.task` (see `store`)."""
        async with heartbeating({}) as progress:
            return await self.store(request, progress)

    async def store(
        self,
        request: StoreRequest,
        progress: dict[str, Any],
        *,
        finished: ProviderTaskStatus | None = None,
        first: bool = False,
    ) -> StoredVideo:
        """Download the provider's output, verify and probe it, upload it to S3; `progress`
        says how far it is (the caller heartbeats it). `finished`: the task's status as just
        polled, whose output URL is fresh (else the task is polled again for one).

        The download is spooled to a temporary file (bounded memory, and a corrupt or
        truncated file is never stored); the upload is multipart. The video object only
        appears when its upload completes, so an existing object means a finished store, and
        every store but the `first` (the poll loop's first attempt) looks for one. Were an
        object there all the same (a run reset by an operator), it is overwritten by the same
        provider output: the check only ever saves work.
        """
        key = request.key or video_key(request.job_id)
        progress["phase"] = "checking"
        existing = None if first else await self._stored(key)
        if existing is not None:
            return existing
        adapter = self._adapter(request.task.route)
        status = finished
        if status is None or not status.output_url:
            with provider_errors():
                status = await adapter.poll(request.task.route, request.task.task_id)
        if status.state is not TaskState.SUCCEEDED or not status.output_url:
            raise ApplicationError(
                f"provider task is {status.state.value}, not succeeded",
                type="invalid_request",
                non_retryable=True,
            )
        with tempfile.TemporaryDirectory(prefix="reelay-store-") as tmp:
            video_path = Path(tmp) / "video.mp4"
            progress["phase"] = "downloading"
            with provider_errors():
                await download_to(adapter, status.output_url, video_path, progress)
            trim = request.trim_to_seconds
            if trim is not None:
                info = await _probe(video_path)
                if info.duration_seconds > trim + TRIM_TOLERANCE_SECONDS:
                    progress["phase"] = "trimming"
                    trimmed = Path(tmp) / "trimmed.mp4"
                    await asyncio.to_thread(trim_video, video_path, trimmed, trim)
                    video_path = trimmed
            progress["phase"] = "uploading"
            return await self._publish(
                key,
                video_path,
                thumbnail=thumbnail_key(request.job_id),
                last_frame=request.keep_last_frame,
            )

    @activity.defn
    async def stitch_segments(self, request: StitchRequest) -> StoredVideo:
        """Join a chain's segments into the job's one video, cut to the requested length."""
        key = video_key(request.job_id)
        async with heartbeating({"phase": "stitching"}):
            existing = await self._stored(key)
            if existing is not None:
                return existing
            with tempfile.TemporaryDirectory(prefix="reelay-stitch-") as tmp:
                parts = [Path(tmp) / f"{n:03d}.mp4" for n in range(len(request.segment_keys))]
                for part_key, path in zip(request.segment_keys, parts, strict=True):
                    with storage_errors():
                        await asyncio.to_thread(
                            self._s3.fget_object, self._bucket, part_key, str(path)
                        )
                joined = Path(tmp) / "video.mp4"
                try:
                    await asyncio.to_thread(
                        stitch_videos,
                        parts,
                        joined,
                        request.seconds,
                        drop_seam_frame=request.drop_seam_frame,
                    )
                except InvalidVideoError as exc:
                    raise ApplicationError(
                        f"a segment is unreadable: {exc}",
                        type="provider_error",
                        non_retryable=True,
                    ) from exc
                return await self._publish(key, joined, thumbnail=thumbnail_key(request.job_id))

    async def _publish(
        self, key: str, video_path: Path, *, thumbnail: str, last_frame: bool = False
    ) -> StoredVideo:
        """Probe, checksum and upload a finished video (thumbnail first, video last)."""
        info = await _probe(video_path)
        sha256, size = await asyncio.to_thread(_digest, video_path)
        thumb_path = video_path.with_suffix(".jpg")
        try:
            await asyncio.to_thread(write_thumbnail, video_path, thumb_path)
        except InvalidVideoError as exc:
            raise ApplicationError(f"unreadable video: {exc}", type=RETRYABLE_TYPE) from exc
        stored = StoredVideo(
            key=key,
            sha256=sha256,
            size_bytes=size,
            width=info.width,
            height=info.height,
            duration_seconds=info.duration_seconds,
            thumbnail_key=thumbnail,
        )
        await self._upload(thumbnail, thumb_path, "image/jpeg")
        if last_frame:
            stored.last_frame_key = last_frame_key(key)
            png = video_path.with_suffix(".png")
            png.write_bytes(await asyncio.to_thread(last_frame_png, video_path))
            await self._upload(stored.last_frame_key, png, "image/png")
        await self._upload(key, video_path, stored.content_type, _video_metadata(stored))
        return stored

    async def _upload(
        self,
        key: str,
        path: Path,
        content_type: str,
        metadata: dict[str, str | list[str] | tuple[str]] | None = None,
    ) -> None:
        with storage_errors():
            await asyncio.to_thread(
                self._s3.fput_object,
                self._bucket,
                key,
                str(path),
                content_type=content_type,
                metadata=metadata,
                part_size=self._part_size,
            )

    async def _stored(self, key: str) -> StoredVideo | None:
        """The video already stored under `key` by an earlier attempt, if any."""
        try:
            stat = await asyncio.to_thread(self._s3.stat_object, self._bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise _storage_failure(exc) from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _storage_failure(exc) from exc
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        try:
            return StoredVideo(
                key=key,
                sha256=meta[_META_PREFIX + "sha256"],
                size_bytes=stat.size or 0,
                width=int(meta[_META_PREFIX + "width"]),
                height=int(meta[_META_PREFIX + "height"]),
                duration_seconds=float(meta[_META_PREFIX + "duration"]),
                thumbnail_key=meta.get(_META_PREFIX + "thumbnail") or None,
                last_frame_key=meta.get(_META_PREFIX + "last-frame") or None,
            )
        except (KeyError, ValueError):
            return None  # not one of ours, or written by an older version: store again


def _video_metadata(video: StoredVideo) -> dict[str, str | list[str] | tuple[str]]:
    return {
        _META_PREFIX + "sha256": video.sha256,
        _META_PREFIX + "width": str(video.width),
        _META_PREFIX + "height": str(video.height),
        _META_PREFIX + "duration": str(video.duration_seconds),
        _META_PREFIX + "thumbnail": video.thumbnail_key or "",
        _META_PREFIX + "last-frame": video.last_frame_key or "",
    }


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def _probe(path: Path) -> VideoInfo:
    try:
        return await asyncio.to_thread(probe_video, path)
    except InvalidVideoError as exc:
        raise ApplicationError(f"unreadable video: {exc}", type=RETRYABLE_TYPE) from exc


@contextlib.asynccontextmanager
async def heartbeating(
    details: dict[str, Any], *, first_after: float = HEARTBEAT_EVERY_SECONDS
) -> AsyncIterator[dict[str, Any]]:
    """Heartbeat `details` every few seconds while the block runs, whatever it waits on (a
    slow download, a thread), so only a dead worker misses its heartbeat timeout. The block
    may update `details` to say how far it is.

    The first beat goes out after `first_after` seconds (`HEARTBEAT_EVERY_SECONDS` unless
    said), well within every heartbeat timeout: a block done sooner (most submits and
    stores) costs Temporal no heartbeat, a write of the activity's state. A local activity
    has no heartbeat to send: it only gets `details`."""
    if activity.info().is_local:
        yield details
        return

    async def beat() -> None:
        await asyncio.sleep(first_after)
        while True:
            activity.heartbeat(dict(details))
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    task = asyncio.create_task(beat())
    try:
        yield details
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _find_submitted(
    adapter: ProviderAdapter,
    request: SubmitRequest,
    image: SourceImage | None,
    callback: str | None,
) -> str | None:
    """The task an earlier attempt of this submit left upstream, where the adapter can find
    it; None when it finds none, cannot look, or the provider does not answer the lookup."""
    info = activity.info()
    job, route = request.job, request.route
    if not isinstance(adapter, FindsSubmitted):
        activity.logger.warning(
            "%s cannot look for a task a lost submit of %s may have left; submitting again",
            route.adapter,
            job.job_id,
        )
        return None
    since = info.scheduled_time - SUBMIT_CLOCK_SKEW
    try:
        found = await adapter.find_submitted(
            job, route, since=since, image=image, callback_url=callback
        )
    except ProviderError as exc:
        activity.logger.warning("looking for a lost submit of %s failed: %s", job.job_id, exc)
        return None
    if found is not None:
        activity.logger.warning(
            "a lost submit of %s had created %s task %s; taking it",
            job.job_id,
            route.adapter,
            found,
        )
    return found


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """S3 failures become a retryable `STORAGE_TYPE` error with a client-safe message."""
    try:
        yield
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _storage_failure(exc) from exc


def _storage_failure(exc: Exception) -> ApplicationError:
    activity.logger.warning("object storage failed: %r", exc)
    return ApplicationError("object storage is unavailable", type=STORAGE_TYPE)
