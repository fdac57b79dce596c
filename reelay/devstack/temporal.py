"""The Temporal dev server: start it, register Reelay's search attributes, find pollers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from reelay.devstack.env import binary
from reelay.devstack.ports import connect_host
from reelay.devstack.process import ManagedProcess
from reelay.devstack.waits import run_async, started, wait_for_http, wait_for_tcp, wait_until
from reelay.search_attributes import search_attribute_types

#: Server settings Reelay's stack runs with (`deploy/temporal/dynamicconfig.yaml` in compose):
#: an activity scheduled on the workflow's own task queue (storing the video) is handed back
#: in the workflow task's response, without a trip through matching. (`bench.heartbeats`
#: measures a candidate here against Temporal's defaults.)
DYNAMIC_CONFIG = {"system.enableActivityEagerExecution": "true"}
#: How the dev server's SQLite file (`make up`'s `temporal.db`) commits: write-ahead logging,
#: synced at checkpoints rather than on every commit. SQLite's own defaults (a rollback
#: journal, fsync twice per commit) make each of a job's ~10 history writes wait on the disk.
#: A crash of the process loses nothing; a power cut may lose the last commits, never the file.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for name, kind in search_attribute_types().items():
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags


def indexed_value_type(kind: str) -> int:
    """The API enum of a CLI type name: `KeywordList` -> `INDEXED_VALUE_TYPE_KEYWORD_LIST`."""
    from temporalio.api.enums.v1 import IndexedValueType

    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()
    return IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{snake}")


async def _ensure_search_attributes(address: str, namespace: str) -> bool:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    client = await Client.connect(address, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    wanted = {
        name: IndexedValueType.ValueType(indexed_value_type(kind))
        for name, kind in search_attribute_types().items()
    }
    missing = {n: t for n, t in wanted.items() if n not in listed.custom_attributes}
    if not missing:
        return True
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as exc:  # another registration (the dev server's own) raced us
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    return False  # check again on the next round


def ensure_search_attributes(
    address: str,
    namespace: str = "default",
    *,
    timeout: float = 60.0,
    process: ManagedProcess | None = None,
) -> None:
    """Wait until Temporal answers and Reelay's search attributes exist (registering them).

    The dev server registers `--search-attribute` flags only when it creates a new database, so
    an existing `temporal.db` from an older checkout gets the missing ones added here.
    """
    wait_until(
        lambda: run_async(lambda: _ensure_search_attributes(address, namespace)),
        what=f"Temporal at {address} (namespace {namespace}) with Reelay's search attributes",
        timeout=timeout,
        interval=0.25,
        process=process,
    )


async def _has_poller(address: str, namespace: str, task_queue: str) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(described.pollers) > 0


def wait_for_task_queue_poller(
    address: str,
    namespace: str,
    task_queue: str,
    *,
    timeout: float = 60.0,
    process: ManagedProcess | None = None,
) -> None:
    """Wait until a worker polls `task_queue` for workflow tasks."""
    wait_until(
        lambda: run_async(lambda: _has_poller(address, namespace, task_queue)),
        what=f"a worker polling task queue {task_queue!r}",
        timeout=timeout,
        interval=0.25,
        process=process,
    )


def temporal_process(
    *,
    port: int,
    log_path: Path,
    host: str = "127.0.0.1",
    db_file: Path | None = None,
    ui_port: int | None = None,
    namespace: str = "default",
    env: Mapping[str, str] | None = None,
    dynamic_config: Mapping[str, str] = DYNAMIC_CONFIG,
    metrics_port: int | None = None,
) -> ManagedProcess:
    """`temporal server start-dev` with Reelay's search attributes, not yet started.

    `db_file=None` keeps state in memory; `ui_port=None` runs headless (no Web UI);
    `dynamic_config` is the stack's unless told (`bench.heartbeats` measures it against
    Temporal's defaults); `metrics_port` serves the server's Prometheus metrics.
    """
    args = [binary("temporal"), "server", "start-dev", "--ip", host, "--port", str(port)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--db-filename", str(db_file)]
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
    if ui_port is None:
        args.append("--headless")
    else:
        args += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if namespace != "default":
        args += ["--namespace", namespace]
    args += dev_server_flags()
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    for key, value in dynamic_config.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return ManagedProcess("temporal", args, log_path=log_path, env=env)


def wait_temporal_ready(
    proc: ManagedProcess | None,
    *,
    port: int,
    host: str = "127.0.0.1",
    ui_port: int | None = None,
    namespace: str = "default",
    timeout: float = 60.0,
) -> None:
    """Until Temporal serves with the search attributes (and the Web UI answers, if any)."""
    wait_for_tcp(host, port, timeout=timeout, process=proc)
    address = f"{connect_host(host)}:{port}"
    ensure_search_attributes(address, namespace, timeout=timeout, process=proc)
    if ui_port is not None:
        wait_for_http(f"http://{connect_host(host)}:{ui_port}/", timeout=timeout, process=proc)


def start_temporal(
    *,
    port: int,
    log_path: Path,
    host: str = "127.0.0.1",
    db_file: Path | None = None,
    ui_port: int | None = None,
    namespace: str = "default",
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """Start `temporal_process(...)` and wait until it is ready."""
    proc = temporal_process(
        port=port,
        log_path=log_path,
        host=host,
        db_file=db_file,
        ui_port=ui_port,
        namespace=namespace,
        env=env,
    )
    return started(
        proc,
        lambda p: wait_temporal_ready(
            p, port=port, host=host, ui_port=ui_port, namespace=namespace, timeout=timeout
        ),
    )
