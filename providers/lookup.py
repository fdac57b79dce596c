"""Finding the task a lost submit attempt left upstream, in a provider's list of recent tasks
(`providers.base.FindsSubmitted`): the listed request must be the one `submit` sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from providers.base import SourceImage

# Pages of recent tasks read per lookup at most: a lost attempt's task is seconds old, so it
# is on the first page unless the account creates hundreds of tasks a minute.
MAX_PAGES = 5


def unsigned(value: Any, image: SourceImage | None) -> Any:
    """`value` with the source image's presigned URL cut to its path: each attempt presigns
    the image anew, so only the object the URL names identifies the request."""
    if image is None:
        return value
    if isinstance(value, dict):
        return {key: unsigned(item, image) for key, item in value.items()}
    if isinstance(value, list):
        return [unsigned(item, image) for item in value]
    path = image.url.partition("?")[0]
    if isinstance(value, str) and value.partition("?")[0] == path:
        return path
    return value


def sent_as(expected: dict[str, Any], listed: Any, image: SourceImage | None) -> bool:
    """Whether a listed request echo carries every field of `expected` (a provider may add
    defaults to what it echoes), the image's signature aside."""
    if not isinstance(listed, dict):
        return False
    echo = unsigned(listed, image)
    return all(echo.get(key) == value for key, value in unsigned(expected, image).items())


def created_time(task: dict[str, Any]) -> datetime | None:
    """A listed task's ISO 8601 `created_at`, None when missing or unreadable."""
    value = task.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
