"""Fixtures: a `moto_server` as the S3 server, `sluice serve` pointed at it, and real clients
(boto3 for AppFlow and S3, the aws CLI).

Both servers are started once per session on free loopback ports and torn down at the end. The
sluice binary comes from `SLUICE_BIN`, else the debug binary under `$CARGO_TARGET_DIR` (or the
repository's `target/`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from servers import free_port, log_sections, start_process, wait_until_ready
from support import (
    ACCOUNT_ID,
    E2E,
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    Api,
    WireLog,
    sluice_env,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
S3_ACCESS_KEY_ID = "moto-access-key"
S3_SECRET_ACCESS_KEY = "moto-secret-key"

# Keep the clients honest and fast: one attempt, no client-side retry of 5xx answers.
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60)


def sluice_binary() -> Path:
    explicit = os.environ.get("SLUICE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = Path(target).expanduser() if target else REPO_ROOT / "target"
    return target_dir / "debug" / "sluice"


def tool(name: str) -> str:
    """An executable installed next to this interpreter (the venv), else on PATH."""
    candidate = BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.exit(f"{name} is not installed (expected {candidate})", returncode=3)
    return found


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def moto(logs_dir):
    """`moto_server` on a free loopback port: the S3 server for sluice and the tests."""
    port = free_port()
    server = start_process(
        "moto",
        [tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        dict(os.environ),
        logs_dir / "moto.log",
        f"http://127.0.0.1:{port}",
    )
    wait_until_ready(server, "moto_server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sluice_bin() -> Path:
    binary = sluice_binary()
    if not binary.exists():
        pytest.exit(
            f"sluice binary not found at {binary}: build it with `cargo build -p sluice` "
            "or set SLUICE_BIN",
            returncode=3,
        )
    return binary


@pytest.fixture(scope="session")
def sluice(sluice_bin, moto, tmp_path_factory, logs_dir):
    """`sluice serve` with fixed root keys, a temporary data dir and moto as its S3."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("sluice-data")
    env = sluice_env(
        {
            "SLUICE_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
            "SLUICE_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
            "SLUICE_ACCOUNT_ID": ACCOUNT_ID,
            "SLUICE_REGION": REGION,
            "SLUICE_S3_ENDPOINT": moto.url,
            "SLUICE_S3_REGION": REGION,
            "SLUICE_S3_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
            "SLUICE_S3_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
        }
    )
    server = start_process(
        "sluice",
        [str(sluice_bin), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
        env,
        logs_dir / "sluice.log",
        f"http://127.0.0.1:{port}",
    )
    server.data_dir = data_dir
    wait_until_ready(server, "sluice serve")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def endpoint(sluice) -> str:
    return sluice.url


@pytest.fixture(scope="session")
def wire() -> WireLog:
    return WireLog()


@pytest.fixture(scope="session")
def appflow_client(endpoint, wire):
    client = boto3.client(
        "appflow",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ROOT_ACCESS_KEY_ID,
        aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )
    client.meta.events.register("before-parse.appflow.*", wire.record)
    return client


@pytest.fixture(scope="session")
def api(appflow_client, wire) -> Api:
    return Api(appflow_client, wire)


@pytest.fixture(scope="session")
def s3(moto):
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=S3_ACCESS_KEY_ID,
        aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )


@pytest.fixture(scope="session")
def src_bucket(s3) -> str:
    name = f"sluice-src-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def dst_bucket(s3) -> str:
    name = f"sluice-dst-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def e2e(api, s3, src_bucket, dst_bucket) -> E2E:
    return E2E(api, s3, src_bucket, dst_bucket)


@dataclass
class CliResult:
    """The outcome of one aws CLI invocation."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}


@pytest.fixture(scope="session")
def aws_cli(endpoint):
    """Runs the real `aws` CLI against sluice with credentials from the environment only."""
    executable = tool("aws")

    def run(*args: str, check: bool = True, endpoint_from_env: bool = False) -> CliResult:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            {
                "AWS_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_PAGER": "",
            }
        )
        command = [executable, "appflow", *args, "--output", "json"]
        if endpoint_from_env:
            # What the README's quick start does.
            env["AWS_ENDPOINT_URL_APPFLOW"] = endpoint
        else:
            command += ["--endpoint-url", endpoint]
        completed = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(completed.returncode, completed.stdout, completed.stderr)
        if check:
            assert result.returncode == 0, (
                f"aws appflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    return run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the tail of the server logs to the report."""
    if call.when != "call" or call.excinfo is None:
        return
    for title, text in log_sections():
        item.add_report_section("call", title, text)
