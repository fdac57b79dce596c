"""S3 access through the `minio` SDK: one client factory and the object key layout."""

from __future__ import annotations

from datetime import timedelta

import urllib3
from minio import Minio

from reelay.settings import Settings


def s3_client(
    settings: Settings,
    *,
    endpoint: str | None = None,
    http_client: urllib3.PoolManager | None = None,
) -> Minio:
    return Minio(
        endpoint or settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http_client,
    )


def presigned_get(settings: Settings, key: str, expires: timedelta) -> str:
    """A GET URL for `key` that someone without our keys (a provider) can fetch.

    Signed for `s3_public_endpoint` when set, since a signature covers the host.
    """
    signer = s3_client(settings, endpoint=settings.s3_public_endpoint or None)
    return signer.presigned_get_object(settings.s3_bucket, key, expires=expires)


def ensure_bucket(client: Minio, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)


def video_key(job_id: str) -> str:
    return f"videos/{job_id}.mp4"


def thumbnail_key(job_id: str) -> str:
    return f"thumbnails/{job_id}.jpg"


def media_key(media_id: str) -> str:
    return f"media/{media_id}"


def segment_key(job_id: str, index: int) -> str:
    return f"segments/{job_id}/{index:03d}.mp4"


def last_frame_key(video_key: str) -> str:
    return video_key.removesuffix(".mp4") + "-last.png"


def batch_file_key(tenant_id: str, file_id: str) -> str:
    """An uploaded batch input file (`POST /v1/batches` with `file`)."""
    return f"batch-files/{tenant_id}/{file_id}.jsonl"


def batch_errors_key(batch_id: str, first_line: int) -> str:
    """The invalid lines of one validated page."""
    return f"batches/{batch_id}/errors/{first_line:08d}.jsonl"


def batch_output_key(batch_id: str, line: int) -> str:
    """One line's output record (rewritten whole on a retry, so never twice)."""
    return f"batches/{batch_id}/output/{line:08d}.json"


def batch_prefix(batch_id: str, part: str) -> str:
    return f"batches/{batch_id}/{part}/"
