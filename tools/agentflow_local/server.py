"""`agentflow serve`: the whole local stack behind one port (README, "The local stack"): DynamoDB Local, the event
bus, the template's schedules (the sweeper), and the HTTP API through a local API Gateway, all as template.yaml wires
them. Also `agentflow keys create`, which works whether or not the stack is running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import TextIO

from agentflow.api.auth import create_api_key, user_for_key
from agentflow.graph import GraphValidationError, validate_graph
from agentflow.store import Store
from agentflow_local.api_gateway import LocalApiGateway
from agentflow_local.dynamodb import DynamoDBLocal, client_for, ensure_table
from agentflow_local.files import LocalFiles, running_dynamodb_endpoint
from agentflow_local.reuse import run_environment
from agentflow_local.scheduler import CronScheduler, RateScheduler
from agentflow_local.stack import LocalStack, LocalStackConfig
from agentflow_local.template import load_template

DEV_USER = "dev"
DEFAULT_PORT = 3000


def dev_api_key(store: Store, files: LocalFiles) -> str:
    """The dev key kept with the local data: created on first start, reused while it is valid."""
    with contextlib.suppress(OSError):
        key = files.dev_key.read_text().strip()
        if user_for_key(store, key) == DEV_USER:
            return key
    key = create_api_key(store, DEV_USER, "dev key (agentflow serve)")
    files.folder.mkdir(parents=True, exist_ok=True)
    files.dev_key.write_text(key + "\n")
    files.dev_key.chmod(0o600)
    return key


def register_examples(stack: LocalStack, files: LocalFiles) -> dict[str, str]:
    """Make every example graph exist for the dev user (once): example file name -> graph id."""
    try:
        known: dict[str, str] = json.loads(files.examples.read_text())
    except (OSError, ValueError):
        known = {}
    store = stack.engine.store
    for path in sorted((files.root / "examples").glob("*.json")):
        graph_id = known.get(path.name)
        if graph_id and store.get_graph_head(DEV_USER, graph_id) is not None:
            continue
        try:
            valid = validate_graph(path.read_text())
        except GraphValidationError:
            continue
        known[path.name], _ = stack.engine.register_graph(DEV_USER, valid)
    files.examples.write_text(json.dumps(known, indent=2))
    return known


def serve(root: Path, port: int = DEFAULT_PORT, out: TextIO | None = None, stop: threading.Event | None = None) -> None:
    """Run the local stack until `stop` is set or SIGINT/SIGTERM arrives; everything is stopped on the way out."""
    files = LocalFiles(root)
    config = LocalStackConfig.for_user(root, log_level=os.environ.get("AGENTFLOW_LOG_LEVEL", "WARNING"))
    stop = stop or threading.Event()
    stack = LocalStack(config).start()
    gateway: LocalApiGateway | None = None
    scheduler: RateScheduler | None = None
    cron: CronScheduler | None = None
    try:
        gateway = LocalApiGateway(stack.template, port=port, runtime=stack.runtime, clock=stack.runtime.clock).start()
        scheduler = RateScheduler(stack.template, runtime=stack.runtime).start()
        cron = CronScheduler(stack.template, stack.runtime).start()
        key = dev_api_key(stack.engine.store, files)
        examples = register_examples(stack, files)
        # how other commands (`agentflow graphs`, `runs`...) find this stack; its owner's alone, like the dev key
        files.running.touch(mode=0o600)
        files.running.chmod(0o600)  # touch keeps the mode of a file a crashed serve left behind
        files.running.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "dynamodb_endpoint": stack.dynamodb_endpoint,
                    "api_url": gateway.url,
                    "environment": run_environment(),  # so `agentflow run` reuses it only with the same settings
                }
            )
        )
        if out is not None:
            _print_banner(out, gateway.url, key, examples, stack, config.data_dir)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    finally:
        with contextlib.suppress(OSError):
            files.running.unlink()
        if scheduler is not None:
            scheduler.stop()
        if cron is not None:
            cron.stop()
        if gateway is not None:
            gateway.stop()
        stack.stop()
        if out is not None:
            print(f"agentflow: stopped (data kept in {config.data_dir})", file=out)


def _print_banner(
    out: TextIO, url: str, key: str, examples: dict[str, str], stack: LocalStack, data_dir: Path | None
) -> None:
    calculator = examples.get("calculator.json")
    print(f"agentflow is serving the HTTP API at {url}", file=out)
    print(f"  dev API key : {key}   (kept in .local/dev-api-key)", file=out)
    print(f"  API docs    : {url}/docs   OpenAPI: {url}/openapi.json", file=out)
    print(f"  web page    : {url}/ui#key={key}   (the key after # stays in the browser)", file=out)
    print(f"  DynamoDB    : {stack.dynamodb_endpoint} (data in {data_dir})", file=out)
    print(f"  metrics     : {stack.metrics_file} (CloudWatch EMF, one JSON document per line)", file=out)
    recovered = stack.recovered
    if recovered is not None and recovered.executions:
        print(f"  recovered   : {recovered} (runs a previous process left unfinished)", file=out)
    if calculator:
        print("Try it (the calculator example adds 34 to its input):", file=out)
        print(
            f"  curl -s -X POST {url}/graphs/{calculator}/execute -H 'X-API-Key: {key}' "
            f"-H 'Content-Type: application/json' -d '{{\"inputs\": {{\"Input\": 8}}}}'",
            file=out,
        )
        print(f"  curl -s {url}/executions/<execution_id> -H 'X-API-Key: {key}'", file=out)
    print("Ctrl-C stops everything.", file=out, flush=True)


def create_key_anywhere(root: Path, user_id: str, name: str) -> str:
    """Create an API key in the local table, through the running stack's DynamoDB or a briefly started one."""
    files = LocalFiles(root)
    config = LocalStackConfig.for_user(root)
    table = load_template(root / "template.yaml").resources["Table"]["Properties"]
    endpoint = config.dynamodb_endpoint or running_dynamodb_endpoint(files)
    if endpoint:
        client = client_for(endpoint)
        ensure_table(client, config.table_name, table)
        return create_api_key(Store(client, config.table_name), user_id, name)
    with DynamoDBLocal(root, config.data_dir) as dynamodb:
        client = client_for(dynamodb.endpoint)
        ensure_table(client, config.table_name, table)
        return create_api_key(Store(client, config.table_name), user_id, name)
