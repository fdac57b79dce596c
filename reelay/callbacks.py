"""Per-job provider callback URLs: an unguessable token binds each URL to one job."""

from __future__ import annotations

import hashlib
import hmac

from reelay.settings import Settings


def callback_token(settings: Settings, job_id: str) -> str:
    return hmac.new(
        settings.signing_key(), f"callback:{job_id}".encode(), hashlib.sha256
    ).hexdigest()


def callback_url(settings: Settings, provider: str, job_id: str) -> str | None:
    """Where `provider` should report on `job_id`; None when no public URL is configured."""
    if not settings.public_url:
        return None
    base = settings.public_url.rstrip("/")
    token = callback_token(settings, job_id)
    return f"{base}/v1/providers/{provider}/callbacks/{job_id}?token={token}"


def token_matches(settings: Settings, job_id: str, token: str) -> bool:
    """Constant-time comparison of bytes (a token with non-ASCII characters simply fails)."""
    expected = callback_token(settings, job_id).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))
