"""Search attributes operators filter jobs on in the Temporal Web UI.

The list itself is data (`reelay/search_attributes.toml`), which `make up`, the test fixtures
and docker-compose register on the server; these are its typed keys, checked against it.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from reelay.jobs import JobSpec, JobStatus
from reelay.search_attributes import search_attribute_types


def _declared(name: str, kind: str) -> str:
    declared = search_attribute_types().get(name)
    if declared != kind:
        raise RuntimeError(
            f"search attribute {name!r} must be declared {kind} in "
            f"reelay/search_attributes.toml (found {declared!r})"
        )
    return name


def _keyword(name: str) -> SearchAttributeKey[str]:
    return SearchAttributeKey.for_keyword(_declared(name, "Keyword"))


TENANT = _keyword("ReelayTenant")
MODEL = _keyword("ReelayModel")
STATUS = _keyword("ReelayStatus")
APP = _keyword("ReelayApp")
BATCH = _keyword("ReelayBatch")
BATCH_STATUS = _keyword("ReelayBatchStatus")
#: When the job was admitted (its view's `created_at`): listings sort on it, since two
#: workflow starts can reach Temporal in the other order than their admissions.
CREATED = SearchAttributeKey.for_datetime(_declared("ReelayCreated", "Datetime"))

ALL: tuple[SearchAttributeKey[Any], ...] = (
    TENANT,
    MODEL,
    STATUS,
    APP,
    BATCH,
    BATCH_STATUS,
    CREATED,
)
if {key.name for key in ALL} != set(search_attribute_types()):
    raise RuntimeError("workflows/search_attributes.py and reelay/search_attributes.toml differ")


def for_new_job(spec: JobSpec) -> TypedSearchAttributes:
    """What a job workflow starts with; the workflow keeps `STATUS` current."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT, spec.tenant_id),
            SearchAttributePair(MODEL, spec.model),
            SearchAttributePair(STATUS, JobStatus.QUEUED.value),
            SearchAttributePair(APP, spec.app_id or ""),
            SearchAttributePair(CREATED, spec.created_at),
            *([SearchAttributePair(BATCH, spec.batch_id)] if spec.batch_id else []),
        ]
    )
