"""``tickwise security secrets|apply``: the secure profile's logins and ACLs on any broker.

Why: the local ``--secure`` broker creates its users and ACLs itself, but a broker run elsewhere
(docker-compose's ``secure`` profile, a shared cluster) needs the same policy applied from outside.
This command applies ``ROLE_ACCESS`` with the very functions the local broker uses
(``ensure_users``, ``create_topics``, ``apply_policy``), so there is one policy and one way of
applying it. Passwords come from a JSON file of ``principal -> password`` that
``tickwise security secrets`` generates once; they never live in code or in the compose file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from confluent_kafka import KafkaException

from tickwise.streams.checkpoint import make_key_file
from tickwise.streams.live.security import (
    ADMIN,
    PRINCIPALS,
    apply_policy,
    ensure_users,
    env_client_config,
    load_credentials,
    new_credentials,
)

CREDENTIALS_FILE = "credentials.json"
CHECKPOINT_KEY_FILE = "checkpoint.key"
MIN_PASSWORD = 16
PLACEHOLDER = "change-me"


class CredentialsError(ValueError):
    """A credentials file that must not be applied: missing logins, short or placeholder ones."""


def check_credentials(creds: dict[str, str]) -> None:
    """Refuse a credentials file that lacks a principal or holds a weak or example password.

    Examples
    --------
    >>> check_credentials({"admin": "x"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickwise.streams.live.security_cli.CredentialsError: ...
    """
    missing = [p for p in PRINCIPALS if p not in creds]
    weak = [p for p, pw in creds.items() if len(pw) < MIN_PASSWORD or PLACEHOLDER in pw.lower()]
    problems = []
    if missing:
        problems.append(f"no password for {', '.join(missing)}")
    if weak:
        problems.append(
            f"placeholder or shorter than {MIN_PASSWORD} characters: {', '.join(sorted(weak))}"
        )
    if problems:
        raise CredentialsError(
            "credentials refused (" + "; ".join(problems) + "); "
            "run `tickwise security secrets` to generate them"
        )


def _write_json(path: Path, data: dict[str, str]) -> None:
    # 0644 inside a 0700 directory: private on the host, yet readable by the containers' own
    # users (Compose bind-mounts file secrets with the host file's owner and mode).
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


def write_secrets(directory: Path) -> dict[str, str]:
    """Create (once) every principal's password under ``directory``; return them.

    ``credentials.json`` holds all of them (for whoever applies the policy); ``<principal>.json``
    holds one login each, so a service is handed its own password and nobody else's;
    ``checkpoint.key`` the workers' checkpoint signing key. Existing passwords and key are kept;
    missing principals are added.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = directory / CREDENTIALS_FILE
    creds = load_credentials(path) if path.exists() else {}
    missing = tuple(p for p in PRINCIPALS if p not in creds)
    creds.update(new_credentials(missing))
    _write_json(path, creds)
    for principal, password in creds.items():
        _write_json(directory / f"{principal}.json", {principal: password})
    # the key the workers sign checkpoints with; 0644 like the logins, for the same reason
    make_key_file(directory / CHECKPOINT_KEY_FILE, mode=0o644)
    return creds


def apply(
    bootstrap: str, creds: dict[str, str], prefix: str = "", app_id: str = "tickwise"
) -> tuple[dict[str, str], int]:
    """Logins, topics, then ACLs, as the admin the environment names; return topics and ACLs."""
    from tickwise.streams.live.admin import create_topics

    check_credentials(creds)
    admin = env_client_config()
    if not admin:
        raise CredentialsError(
            f"no admin login: set TICKWISE_SASL_USERNAME={ADMIN} and TICKWISE_SASL_PASSWORD "
            "(or TICKWISE_CREDENTIALS_FILE)"
        )
    ensure_users(bootstrap, admin, creds)
    topics = create_topics(bootstrap, prefix, client_config=admin)
    return topics, apply_policy(bootstrap, admin, prefix, app_id)


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise security secrets|apply`` and return the exit code."""
    if args.action == "secrets":
        creds = write_secrets(args.dir)
        print(
            f"{len(creds)} logins in {args.dir}/ ({', '.join(creds)}) and the checkpoint key "
            f"({CHECKPOINT_KEY_FILE}); keep it out of git"
        )
        return 0
    from tickwise.streams.live.bootstrap import resolve_bootstrap

    path = args.credentials or os.environ.get("TICKWISE_CREDENTIALS_FILE")
    if not path:
        print("error: give --credentials or set TICKWISE_CREDENTIALS_FILE", file=sys.stderr)
        return 2
    bootstrap = resolve_bootstrap(args)
    try:
        creds = load_credentials(path)
        topics, acls = apply(bootstrap, creds, args.topic_prefix, args.app_id)
    except (OSError, ValueError, KafkaException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    created = sum(1 for v in topics.values() if v == "created")
    print(
        f"{bootstrap}: {len(creds) - 1} logins set, {created} topics created "
        f"({len(topics) - created} existed), {acls} ACLs applied (prefix {args.topic_prefix!r})"
    )
    return 0
