"""S3 access through the `minio` SDK: one client factory and the object key layout."""

from __future__ import annotations

from minio import Minio

from reelay.settings import Settings


def s3_client(settings: Settings) -> Minio:
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


def ensure_bucket(client: Minio, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)


def video_key(job_id: str) -> str:
    return f"videos/{job_id}.mp4"


def thumbnail_key(job_id: str) -> str:
    return f"thumbnails/{job_id}.jpg"
