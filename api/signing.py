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


def verify(key: bytes, job_id: str, expires: int, signature: str) -> bool:
    if expires < time.time():
        return False
    return hmac.compare_digest(sign(key, job_id, expires), signature)
