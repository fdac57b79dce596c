"""The model table: `models.toml`, loaded and validated once at import."""

from __future__ import annotations

import tomllib
from importlib import resources

from pydantic import ValidationError

from providers.catalog.schema import Catalog, ModelSpec

DATA_FILE = "models.toml"


class CatalogDataError(ValueError):
    """The data file breaks the schema; the message names the entry and the field."""


def parse_catalog(text: str, source: str = DATA_FILE) -> tuple[ModelSpec, ...]:
    """Validate a catalog document; every problem is reported as `model 'id' ... field`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogDataError(f"{source}: not valid TOML: {exc}") from None
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogDataError(
            "\n".join(_describe(source, raw, error) for error in exc.errors())
        ) from None
    _check_names(source, catalog.models)
    return catalog.models


def load_models() -> tuple[ModelSpec, ...]:
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_catalog(text)


def _describe(source: str, raw: dict[str, object], error: object) -> str:
    """`models.toml: model 'pika' route 1 (fal-ai/...): durations: ...` from a pydantic error."""
    assert isinstance(error, dict)
    loc = list(error.get("loc", ()))
    where = []
    models = raw.get("models")
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        entry = models[loc[1]] if isinstance(models, list) and loc[1] < len(models) else {}
        where.append(f"model {entry.get('id', f'#{loc[1] + 1}')!r}")
        loc = loc[2:]
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            routes = entry.get("routes") if isinstance(entry, dict) else None
            route = routes[loc[1]] if isinstance(routes, list) and loc[1] < len(routes) else {}
            where.append(f"route {loc[1] + 1} ({route.get('upstream_model', '?')})")
            loc = loc[2:]
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    field = ".".join(str(part) for part in loc)
    return f"{source}: {' '.join(where) or 'document'}: {f'{field}: ' if field else ''}{message}"


def _check_names(source: str, models: tuple[ModelSpec, ...]) -> None:
    seen: dict[str, str] = {}
    for model in models:
        for name in (model.id, *model.aliases):
            other = seen.setdefault(name.lower(), model.id)
            if other != model.id:
                raise CatalogDataError(
                    f"{source}: model {model.id!r}: aliases: {name!r} already names {other!r}"
                )
