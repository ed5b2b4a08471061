"""`agentflow credentials`: a user's credentials in the local table, whether or not `agentflow serve` runs (its
DynamoDB Local is shared; else one is started on the data folder for the command). Secrets are read from stdin
(or a no-echo prompt), encrypted with the local key file (<local dir>/credentials.key) and never printed."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from agentflow.api.auth import USER_ID_PATTERN
from agentflow.credentials.crypto import LocalKeyring
from agentflow.credentials.validation import CredentialInputError, NewCredential
from agentflow.credentials.vault import CredentialVault
from agentflow.errors import ConfigurationError
from agentflow.store import CredentialMeta, Store
from agentflow_local.dynamodb import DynamoDBLocal, client_for, ensure_table, project_root
from agentflow_local.template import load_template

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
MAX_STDIN = 65_536

ADD_HELP = """\
Store a credential for a user; the secret is read from stdin (a no-echo prompt on a terminal):
  api_key        the key itself                        echo "$OPENAI_API_KEY" | agentflow credentials add \\
                                                         --user me --provider openai
                 (--base-url: a server of your own)    echo ollama | agentflow credentials add --user me \\
                                                         --provider openai --base-url http://127.0.0.1:11434/v1
  user_password  one line username:password            (split at the first ':'; a username has none)
  host_scoped    a JSON object of headers, with --host  echo '{"Authorization": "Bearer t"}' | agentflow \\
                                                         credentials add --user me --provider http \\
                                                         --type host_scoped --host api.example.com
A trailing newline is dropped. The created credential's metadata (never its secret) is printed as JSON; a node
uses it as {"id": ..., "provider": ..., "type": ...} in its `credentials` input."""


def register(commands: Any) -> None:
    """Add `credentials add|list|delete` to the CLI's subcommands."""
    credentials = commands.add_parser("credentials", help="manage a user's credentials (API keys, passwords, headers)")
    actions = credentials.add_subparsers(dest="credentials_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="store a credential (secret from stdin)",
        description=ADD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("--user", required=True, help="the user who owns it")
    add.add_argument("--provider", required=True, help="e.g. openai, anthropic, http (lowercase, digits, _)")
    add.add_argument("--type", default="api_key", help="api_key (default), user_password or host_scoped")
    add.add_argument("--title", help="a label for it")
    add.add_argument("--host", help="host_scoped: the host (or *.domain) its headers may be sent to")
    add.add_argument(
        "--base-url",
        help="api_key: the base URL of an OpenAI-compatible API to call with the key, e.g. http://127.0.0.1:11434/v1",
    )
    listing = actions.add_parser("list", help="list a user's credentials (metadata only)")
    listing.add_argument("--user", required=True)
    delete = actions.add_parser("delete", help="delete one of a user's credentials")
    delete.add_argument("--user", required=True)
    delete.add_argument("credential_id", metavar="ID")


def _show(meta: CredentialMeta) -> dict[str, Any]:
    shown = asdict(meta)
    return {"id": shown.pop("credential_id"), **{k: v for k, v in shown.items() if k != "user_id"}}


def read_secret(stdin: TextIO, prompt: str) -> str:
    """The secret on stdin, without its trailing newline (a no-echo prompt when stdin is a terminal)."""
    if stdin.isatty():
        return getpass.getpass(prompt)
    text = stdin.read(MAX_STDIN + 1)
    if len(text) > MAX_STDIN:
        raise CredentialInputError([("stdin", f"is longer than {MAX_STDIN} characters")])
    return text.removesuffix("\n").removesuffix("\r")


def new_from_stdin(args: argparse.Namespace, stdin: TextIO) -> NewCredential:
    common: dict[str, Any] = {"provider": args.provider, "type": args.type, "title": args.title, "host": args.host}
    common["base_url"] = args.base_url  # any type: the vault refuses it, naming it, on a type other than api_key
    if args.type == "user_password":
        username, sep, password = read_secret(stdin, "username:password: ").partition(":")
        if not sep:
            raise CredentialInputError([("stdin", "expected one line username:password")])
        return NewCredential(**common, username=username, password=password)
    if args.type == "host_scoped":
        try:
            headers = json.loads(read_secret(stdin, "headers (JSON object): "))
        except ValueError:
            raise CredentialInputError(
                [("stdin", 'expected a JSON object of headers, e.g. {"X-Api-Key": "..."}')]
            ) from None
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise CredentialInputError([("stdin", "expected a JSON object of header name to string value")])
        return NewCredential(**common, headers=headers)
    if args.type == "api_key":
        return NewCredential(**common, api_key=read_secret(stdin, "API key: "))
    return NewCredential(**common)  # an unknown type: the vault names the allowed ones


@contextmanager
def local_vault(root: Path) -> Iterator[CredentialVault]:
    """The vault on the local table: the running stack's DynamoDB Local, or one started for this command."""
    from agentflow_local.stack import LocalStackConfig  # here: the other commands need not load the local stack

    config = LocalStackConfig.for_user(root)
    assert config.credentials_key_file is not None
    table = load_template(root / "template.yaml").resources["Table"]["Properties"]
    keyring = LocalKeyring(config.credentials_key_file)
    if config.dynamodb_endpoint:
        client = client_for(config.dynamodb_endpoint)
        ensure_table(client, config.table_name, table)
        yield CredentialVault(Store(client, config.table_name), keyring)
        return
    with DynamoDBLocal(root, config.data_dir) as dynamodb:
        client = client_for(dynamodb.endpoint)
        ensure_table(client, config.table_name, table)
        yield CredentialVault(Store(client, config.table_name), keyring)


def _run(args: argparse.Namespace, root: Path, stdin: TextIO, out: TextIO) -> int:
    if args.credentials_command == "add":
        new = new_from_stdin(args, stdin)
        with local_vault(root) as vault:
            print(json.dumps(_show(vault.create(args.user, new)), indent=2), file=out)
        return EXIT_OK
    with local_vault(root) as vault:
        if args.credentials_command == "list":
            print(json.dumps([_show(m) for m in vault.list(args.user)], indent=2), file=out)
            return EXIT_OK
        if not vault.delete(args.user, args.credential_id):
            print(f"error: credentials {args.credential_id!r} not found", file=sys.stderr)
            return EXIT_FAILED
    print(json.dumps({"id": args.credential_id, "deleted": True}), file=out)
    return EXIT_OK


def credentials_command(
    args: argparse.Namespace, root: Path | None = None, stdin: TextIO | None = None, out: TextIO | None = None
) -> int:
    if not USER_ID_PATTERN.match(args.user):
        print(f"error: invalid --user {args.user!r}: use 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return EXIT_INVALID
    try:
        return _run(args, root or project_root(), stdin or sys.stdin, out or sys.stdout)
    except CredentialInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ConfigurationError as exc:  # no template.yaml, DynamoDB Local cannot run, the key file is not one
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
