"""Signed download links of a job, the same for every dialect."""

from __future__ import annotations

from api.signing import signed_query
from reelay.jobs import JobView
from reelay.settings import Settings

# The one signed download endpoint (the native dialect's), whatever dialect made the job.
CONTENT_PREFIX = "/v1/video/generations"


def signed_links(view: JobView, settings: Settings) -> tuple[str, str | None] | None:
    """(video URL, thumbnail URL) that work without a key until `video_url_ttl_seconds`
    from now; None until the video is stored."""
    if view.video is None:
        return None
    query = signed_query(settings.signing_key(), view.job_id, settings.video_url_ttl_seconds)
    base = f"{settings.public_url.rstrip('/')}{CONTENT_PREFIX}/{view.job_id}"
    thumbnail = f"{base}/thumbnail?{query}" if view.video.thumbnail_key else None
    return f"{base}/content?{query}", thumbnail
