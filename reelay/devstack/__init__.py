"""The local stack: real servers on this machine for `make up`, the tests and the benchmarks.

One concern per module:

- `ports`: free ports, busy ports, `host:port` addresses
- `env`: the stack binaries and a child's `REELAY_*` environment
- `process`: `ManagedProcess`, one child in its own process group with a log file
- `waits`: bounded waits on a condition, a URL or a port
- `temporal`: the Temporal dev server and Reelay's search attributes (from their data file)
- `s3`: SeaweedFS and its bucket
- `apps`: Reelay's emulator, worker and API processes
- `ephemeral`: a throwaway stack on free ports (`bench/`, `tests/histories/record.py`)
- `supervise`: keeps the parts of `make up` running (restart with back-off)
- `console`: `python -m reelay.devstack up` (`make up`)

The names below are what `tests/conftest.py`, `tests/support.py` and `bench/` import.
"""

from reelay.devstack.apps import (
    EMULATOR_MODULE,
    api_base_url,
    start_api,
    start_emulator,
    start_worker,
)
from reelay.devstack.console import READY_MARKER, STACK_ORDER, run_stack
from reelay.devstack.env import binary, child_env, settings_env
from reelay.devstack.ephemeral import ephemeral_stack
from reelay.devstack.ports import (
    GRPC_PORT_OFFSET,
    free_port,
    port_is_free,
    port_is_open,
    split_host_port,
)
from reelay.devstack.process import ManagedProcess, StackError, StackTimeout
from reelay.devstack.s3 import S3Endpoint, start_seaweed
from reelay.devstack.temporal import (
    ensure_search_attributes,
    start_temporal,
    wait_for_task_queue_poller,
)
from reelay.devstack.waits import run_async, wait_for_http, wait_for_tcp, wait_until

__all__ = [
    "EMULATOR_MODULE",
    "GRPC_PORT_OFFSET",
    "READY_MARKER",
    "STACK_ORDER",
    "ManagedProcess",
    "S3Endpoint",
    "StackError",
    "StackTimeout",
    "api_base_url",
    "binary",
    "child_env",
    "ensure_search_attributes",
    "ephemeral_stack",
    "free_port",
    "port_is_free",
    "port_is_open",
    "run_async",
    "run_stack",
    "settings_env",
    "split_host_port",
    "start_api",
    "start_emulator",
    "start_seaweed",
    "start_temporal",
    "start_worker",
    "wait_for_http",
    "wait_for_task_queue_poller",
    "wait_for_tcp",
    "wait_until",
]
