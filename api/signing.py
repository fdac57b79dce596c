"""Signed, expiring download links, so `video_url` works with no extra set-up."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(key: bytes, job_id: str, expires: int) -> str:
    return hmac.new(key, f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: bytes, job_id: str, ttl_seconds: int) -> str:
    expires = int(time.time()) + ttl_seconds
    return f"expires={expires}&signature={sign(key, job_id, expires)}"


def verify(key: bytes, job_id: str, expires: str, signature: str) -> bool:
    """Whether a link's `expires` and `signature` (as sent, unchecked) are valid and current.

    Anything malformed (not ASCII digits, a non-ASCII signature) is simply invalid."""
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return False
    if int(expires) < time.time():
        return False
    return hmac.compare_digest(sign(key, job_id, int(expires)).encode(), signature.encode())
