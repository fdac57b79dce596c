"""The model catalog: schema (`schema`), data (`models.toml`, loaded by `data`) and the
resolver that turns a client request into routes (`resolver`)."""

from providers.catalog.data import CatalogDataError, parse_catalog
from providers.catalog.resolver import (
    DEFAULT_MODEL,
    MODELS,
    ResolvedRequest,
    check_job,
    find_model,
    resolve_request,
    route_family,
)
from providers.catalog.schema import (
    MAX_SEGMENTS,
    SEAM_SECONDS,
    CatalogError,
    ModelSpec,
    RouteSpec,
)

__all__ = [
    "DEFAULT_MODEL",
    "MAX_SEGMENTS",
    "MODELS",
    "SEAM_SECONDS",
    "CatalogDataError",
    "CatalogError",
    "ModelSpec",
    "ResolvedRequest",
    "RouteSpec",
    "check_job",
    "find_model",
    "parse_catalog",
    "resolve_request",
    "route_family",
]
