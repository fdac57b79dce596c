"""Idempotent submits, in one place.

A submit with an `Idempotency-Key` gets a job id derived from the tenant and the key, and a
fingerprint of the request, stored with the job (`JobSpec.request_hash`, in the workflow's
start arguments and memo) and in the tenant's ledger. A retry with the same key and the same
request gets the job that exists; the same key with another request is refused
(`ErrorCode.IDEMPOTENCY_CONFLICT`, a 409). Everything that checks this calls `same_request`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_KEY_CHARS = 255
CONFLICT_MESSAGE = "Idempotency-Key was already used with a different request body"


class InvalidKeyError(ValueError):
    """The key itself is unusable (too long, control characters)."""


def check_key(key: str) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise InvalidKeyError(f"Idempotency-Key must be at most {MAX_KEY_CHARS} characters")
    if not key.isprintable():
        raise InvalidKeyError("Idempotency-Key must be printable characters")


def job_digest(tenant_id: str, key: str) -> str:
    """The same digest for the same tenant and key; the job id is built from it."""
    return hashlib.sha256(f"{tenant_id}\n{key}".encode()).hexdigest()[:32]


def fingerprint(dialect: str, body: Any) -> str:
    """Fingerprint of a request, to tell a retry from a different request under one key."""
    canonical = json.dumps({"dialect": dialect, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(stored: str | None, incoming: str | None) -> bool:
    """Whether a submit for an existing job id repeats the request that made the job."""
    return stored == incoming


def update_id(job_id: str, request_hash: str | None) -> str:
    """The id of the account update that admits a job.

    Temporal answers an update id it has seen with the first answer, without running the
    validator or the handler; so the id carries the fingerprint, and a different request
    under the same key reaches the ledger, which refuses it."""
    return job_id if request_hash is None else f"{job_id}:{request_hash[:16]}"
