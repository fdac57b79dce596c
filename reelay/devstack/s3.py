"""SeaweedFS as the S3 server: start `weed mini` and make sure the bucket exists."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from reelay.devstack.env import binary
from reelay.devstack.ports import connect_host, free_port
from reelay.devstack.process import ManagedProcess
from reelay.devstack.waits import started, wait_for_http, wait_until


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3 server is and how to use it, in `Settings` terms."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "s3_endpoint": self.endpoint,
            "s3_access_key": self.access_key,
            "s3_secret_key": SecretStr(self.secret_key),
            "s3_bucket": self.bucket,
            "s3_region": self.region,
            "s3_secure": self.secure,
        }


def _ensure_bucket(endpoint: S3Endpoint) -> bool:
    from minio import Minio

    client = Minio(
        endpoint.endpoint,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=endpoint.secure,
        region=endpoint.region,
    )
    if not client.bucket_exists(endpoint.bucket):
        client.make_bucket(endpoint.bucket)
    return client.bucket_exists(endpoint.bucket)


def seaweed_process(
    *,
    data_dir: Path,
    port: int,
    access_key: str,
    secret_key: str,
    bucket: str,
    log_path: Path,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """`weed mini` (S3 on `port`, data in `data_dir`, creating `bucket`), not yet started.

    Port + 10000 must be free as well (S3 gRPC). SeaweedFS's internal ports (master, volume,
    filer, WebDAV, admin) are picked fresh for every process; it keeps its data across restarts
    regardless. The credentials apply on every start (AWS_* env of the process).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        binary("weed"),
        "-logtostderr",  # into our log file, not /tmp/weed.*
        "mini",
        f"-dir={data_dir}",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-s3.port={port}",
        f"-master.port={free_port(host, with_grpc=True)}",
        f"-volume.port={free_port(host, with_grpc=True)}",
        f"-filer.port={free_port(host, with_grpc=True)}",
        f"-webdav.port={free_port(host, with_grpc=True)}",
        f"-admin.port={free_port(host, with_grpc=True)}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-bucket={bucket}",
    ]
    proc_env = dict(env) if env is not None else dict(os.environ)
    proc_env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    return ManagedProcess("s3", args, log_path=log_path, env=proc_env)


def wait_bucket_ready(
    proc: ManagedProcess | None, endpoint: S3Endpoint, *, timeout: float = 60.0
) -> None:
    """Until the S3 server answers /healthz and `endpoint.bucket` exists (created if missing)."""
    wait_for_http(f"{endpoint.url}/healthz", timeout=timeout, process=proc)
    wait_until(
        lambda: _ensure_bucket(endpoint),
        what=f"bucket {endpoint.bucket!r} at {endpoint.url}",
        timeout=timeout,
        interval=0.25,
        process=proc,
        fatal=(ValueError,),  # the SDK's verdict on a bad bucket name does not change
    )


def start_seaweed(
    *,
    data_dir: Path,
    port: int,
    access_key: str,
    secret_key: str,
    bucket: str,
    log_path: Path,
    host: str = "127.0.0.1",
    region: str = "us-east-1",
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """Start `seaweed_process(...)` and wait until `bucket` is usable."""
    proc = seaweed_process(
        data_dir=data_dir,
        port=port,
        access_key=access_key,
        secret_key=secret_key,
        bucket=bucket,
        log_path=log_path,
        host=host,
        env=env,
    )
    endpoint = S3Endpoint(f"{connect_host(host)}:{port}", access_key, secret_key, bucket, region)
    return started(proc, lambda p: wait_bucket_ready(p, endpoint, timeout=timeout))
