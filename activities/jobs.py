"""Every side effect of a job. Each activity is safe to retry after a crash."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from minio import Minio
from minio.error import S3Error
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import RETRYABLE_TYPE, provider_errors
from activities.inputs import ProviderTaskRef, StoreRequest, SubmitRequest
from activities.media import InvalidVideoError, probe_video, write_thumbnail
from providers.base import ProviderAdapter, ProviderTaskStatus, SourceImage, TaskState
from providers.catalog import CatalogError, resolve_request
from providers.errors import RetryableProviderError
from reelay.callbacks import callback_url
from reelay.jobs import ImageRef, JobSpec, Route, StoredVideo
from reelay.settings import Settings
from reelay.storage import presigned_get, thumbnail_key, video_key

T = TypeVar("T")

HEARTBEAT_EVERY_SECONDS = 3.0
CHUNK_BYTES = 1 << 20
_META_PREFIX = "x-amz-meta-"


class JobActivities:
    def __init__(self, settings: Settings, adapters: dict[str, ProviderAdapter], s3: Minio) -> None:
        self._settings = settings
        self._adapters = adapters
        self._s3 = s3
        self._bucket = settings.s3_bucket
        self._part_size = settings.s3_part_size_mb * 1024 * 1024

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
        """Re-check a job against today's catalog (backfills start workflows without the API)."""
        try:
            resolve_request(
                prompt=job.prompt,
                model=job.requested_model,
                duration_seconds=job.duration_seconds,
                resolution=job.resolution,
                aspect_ratio=job.aspect_ratio,
                audio=job.audio,
                with_image=job.image is not None,
            )
        except CatalogError as exc:
            raise ApplicationError(exc.message, type="invalid_request", non_retryable=True) from exc
        for route in job.routes:
            self._adapter(route)

    @activity.defn
    async def submit_to_provider(self, request: SubmitRequest) -> str:
        job, route = request.job, request.route
        adapter = self._adapter(route)
        image = await self._source_image(job.image) if job.image is not None else None
        with provider_errors():
            return await adapter.submit(
                job,
                route,
                image=image,
                callback_url=callback_url(self._settings, route.adapter, job.job_id),
            )

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
        """Download the provider's output, verify and probe it, upload it to S3.

        The download is spooled to a temporary file (bounded memory, and a corrupt or
        truncated file is never stored); the upload is multipart. The video object only
        appears when its upload completes, so an existing object means a finished store.
        """
        key = video_key(request.job_id)
        existing = await asyncio.to_thread(self._stored, key)
        if existing is not None:
            return existing
        adapter = self._adapter(request.task.route)
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
            with provider_errors():
                sha256, size = await _download(adapter, status.output_url, video_path)
            try:
                info = await asyncio.to_thread(probe_video, video_path)
                thumb_path = Path(tmp) / "thumb.jpg"
                await asyncio.to_thread(write_thumbnail, video_path, thumb_path)
            except InvalidVideoError as exc:
                raise ApplicationError(
                    f"provider delivered an unreadable video: {exc}", type=RETRYABLE_TYPE
                ) from exc
            stored = StoredVideo(
                key=key,
                sha256=sha256,
                size_bytes=size,
                width=info.width,
                height=info.height,
                duration_seconds=info.duration_seconds,
                thumbnail_key=thumbnail_key(request.job_id),
            )
            await _with_heartbeats(
                asyncio.to_thread(
                    self._s3.fput_object,
                    self._bucket,
                    stored.thumbnail_key or "",
                    str(thumb_path),
                    content_type="image/jpeg",
                )
            )
            await _with_heartbeats(
                asyncio.to_thread(
                    self._s3.fput_object,
                    self._bucket,
                    key,
                    str(video_path),
                    content_type=stored.content_type,
                    metadata=_video_metadata(stored),
                    part_size=self._part_size,
                )
            )
        return stored

    def _stored(self, key: str) -> StoredVideo | None:
        try:
            stat = self._s3.stat_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        try:
            return StoredVideo(
                key=key,
                sha256=meta[_META_PREFIX + "sha256"],
                size_bytes=stat.size or 0,
                width=int(meta[_META_PREFIX + "width"]),
                height=int(meta[_META_PREFIX + "height"]),
                duration_seconds=float(meta[_META_PREFIX + "duration"]),
                thumbnail_key=meta.get(_META_PREFIX + "thumbnail"),
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
    }


async def _download(adapter: ProviderAdapter, url: str, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    last_beat = time.monotonic()
    async with adapter.download(url) as response:
        expected = response.headers.get("content-length")
        with target.open("wb") as out:
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if time.monotonic() - last_beat >= HEARTBEAT_EVERY_SECONDS:
                    activity.heartbeat({"downloaded_bytes": size})
                    last_beat = time.monotonic()
    if expected is not None and int(expected) != size:
        raise RetryableProviderError(
            f"download truncated: got {size} of {expected} bytes", provider=adapter.name
        )
    return digest.hexdigest(), size


async def _with_heartbeats(work: Awaitable[T]) -> T:
    """Await blocking work running in a thread while heartbeating, so a dead worker is noticed."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat({"phase": "uploading"})
