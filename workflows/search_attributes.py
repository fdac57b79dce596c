"""Search attributes operators filter jobs on in the Temporal Web UI.

`make up` and the test fixtures register exactly these on the dev server.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from reelay.jobs import JobSpec, JobStatus

TENANT = SearchAttributeKey.for_keyword("ReelayTenant")
MODEL = SearchAttributeKey.for_keyword("ReelayModel")
STATUS = SearchAttributeKey.for_keyword("ReelayStatus")
APP = SearchAttributeKey.for_keyword("ReelayApp")
BATCH = SearchAttributeKey.for_keyword("ReelayBatch")

ALL = (TENANT, MODEL, STATUS, APP, BATCH)


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags


def for_new_job(spec: JobSpec) -> TypedSearchAttributes:
    """What a job workflow starts with; the workflow keeps `STATUS` current."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT, spec.tenant_id),
            SearchAttributePair(MODEL, spec.model),
            SearchAttributePair(STATUS, JobStatus.QUEUED.value),
            SearchAttributePair(APP, spec.app_id or ""),
        ]
    )
