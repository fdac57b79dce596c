"""Behaviour directives embedded in a prompt, e.g. `[emu gen=2.5 steps=4 refuse]`.

Tokens are `key=value` or a bare flag, separated by spaces or commas, case-insensitive; a
prompt may hold several `[emu ...]` brackets (later keys win). The prompt itself is left as
is: a directive is part of the text the provider sees.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_BRACKET = re.compile(r"\[emu\b([^\]]*)\]", re.IGNORECASE)
_SEPARATOR = re.compile(r"[\s,]+")


class DirectiveError(ValueError):
    """A malformed `[emu ...]` bracket: unknown key or a value of the wrong type."""


class Directives(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gen: float | None = Field(default=None, ge=0, description="generation seconds")
    queue: float | None = Field(default=None, ge=0, description="seconds in PENDING")
    steps: int | None = Field(default=None, ge=1, description="distinct progress values")
    refuse: bool = Field(default=False, description="end FAILED as a content refusal")
    fail: Literal["internal"] | None = Field(default=None, description="end FAILED, internal")
    create_5xx: int = Field(default=0, ge=0, description="first N creates of this prompt: 503")
    create_429: int = Field(default=0, ge=0, description="first N creates of this prompt: 429")
    retry_after: int = Field(default=1, ge=0, description="Retry-After seconds on those 429s")
    poll_5xx: int = Field(default=0, ge=0, description="first N polls of the task: 502")
    truncate: int = Field(default=0, ge=0, description="first N downloads stop half-way")
    slow: int | None = Field(default=None, gt=0, description="download bytes per second")
    create_delay: float = Field(
        default=0, ge=0, le=30, description="seconds a Runway create takes to answer"
    )


def parse_directives(text: str | None) -> Directives:
    values: dict[str, str] = {}
    for bracket in _BRACKET.findall(text or ""):
        for token in _SEPARATOR.split(bracket.strip().lower()):
            if token:
                key, _, value = token.partition("=")
                values[key] = value or "true"
    try:
        return Directives.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise DirectiveError(f"bad [emu] directive: {problems}") from None
