"""Request field types whose JSON schema carries the catalog's static rules: the model ids
served (aliases included), the resolutions and aspect ratios any of them makes, and the
duration bounds. Derived from `providers.catalog.MODELS`, never typed twice.

Only the schema is narrowed: validation stays the resolver's (`resolve_request`), which
knows the per-model rules and answers them with a 400 naming the field. Retired and
unavailable models are left out of the enum (they are answered 400 too).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StrictFloat, StrictInt, StringConstraints, WithJsonSchema

from providers.catalog import MODELS, ModelSpec


def _served(model: ModelSpec) -> bool:
    return bool(model.routes) and model.retired_on is None and model.unavailable_reason is None


def _names(models: tuple[ModelSpec, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for m in models for name in (m.id, *m.aliases)))


SERVED = tuple(model for model in MODELS if _served(model))
MODEL_IDS = _names(SERVED)
# Dialects without a source image field can use only the models that make text-to-video.
TEXT_MODEL_IDS = _names(tuple(model for model in SERVED if model.text_to_video))
LONGEST_PROMPT = max(m.max_prompt_chars for m in SERVED)
RESOLUTIONS = tuple(dict.fromkeys(r for m in SERVED for r in m.resolutions))
ASPECT_RATIOS = tuple(dict.fromkeys(r for m in SERVED for r in m.aspect_ratios))
SHORTEST_SECONDS = min(m.shortest_seconds for m in SERVED)
LONGEST_SECONDS = max(m.longest_seconds for m in SERVED)


def _choice(values: tuple[str, ...], description: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "description": description}


def _seconds(kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "minimum": SHORTEST_SECONDS,
        "maximum": LONGEST_SECONDS,
        "description": "seconds; the model's own durations apply (GET /v1/models)",
    }


# An empty value is refused by name (the resolver would read it as absent: the default).
ModelId = Annotated[
    str,
    StringConstraints(min_length=1),
    WithJsonSchema(_choice(MODEL_IDS, "catalog model id or alias (GET /v1/models)")),
]
TextModelId = Annotated[
    str,
    StringConstraints(min_length=1),
    WithJsonSchema(_choice(TEXT_MODEL_IDS, "catalog model id or alias making text-to-video")),
]
PROMPT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": LONGEST_PROMPT,
    "description": "the video to make; the model's own limit applies (GET /v1/models)",
}
Prompt = Annotated[str, WithJsonSchema(PROMPT_SCHEMA)]
Resolution = Annotated[
    str,
    StringConstraints(min_length=1),
    WithJsonSchema(_choice(RESOLUTIONS, "the model's resolutions apply (GET /v1/models)")),
]
AspectRatio = Annotated[
    str,
    StringConstraints(min_length=1),
    WithJsonSchema(_choice(ASPECT_RATIOS, "the model's ratios apply (GET /v1/models)")),
]
Seconds = Annotated[StrictInt, WithJsonSchema(_seconds("integer"))]
# The native dialect takes a whole number written as a float too (`4.0`).
WholeSeconds = Annotated[StrictInt | StrictFloat, WithJsonSchema(_seconds("number"))]
