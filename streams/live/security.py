"""The ``secure`` profile: SASL/SCRAM-SHA-512 logins and Kafka ACLs, one principal per role.

Why: risk and compliance need to know that nobody can read or write a topic their role has no
business with; a feed must not read the audit trail, a downstream reader must not write
decisions. KRaft's ``StandardAuthorizer`` denies everything not allowed by an ACL
(``allow.everyone.if.no.acl.found=false``), and ``ROLE_ACCESS`` below is the whole policy.

Credentials never live in code: ``tickwise broker start --secure`` writes random passwords to
``credentials.json`` (mode 0600) in the broker's data dir, or uses ``TICKWISE_CREDENTIALS_FILE``
when it names an existing file; clients read ``TICKWISE_SASL_USERNAME`` /
``TICKWISE_SASL_PASSWORD`` or that file (``client_config``).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
CREDENTIALS_FILE = "credentials.json"

# role -> (topics it reads, topics it writes); names are catalogue names, prefixed per deployment
ROLE_ACCESS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "feed": ((), ("ticks.raw",)),
    "validator": (
        ("ticks.raw", "ticks.clean", "ticks.quarantine"),
        ("ticks.clean", "ticks.quarantine"),
    ),
    "features": (("ticks.clean",), ("features",)),
    "model": (("features",), ("signals",)),
    "risk": (("signals", "control"), ("decisions", "fills", "alerts", "control")),
    "audit": (("features", "signals", "decisions"), ("audit",)),
    "reader": (("features", "signals", "decisions", "audit", "alerts", "fills", "registry"), ()),
    # tickwise console: reads what it shows (streams.console.view.SPECS); writes only the
    # operators' commands, and the registry's log they change (its last entry read first)
    "console": (
        (
            "decisions",
            "signals",
            "fills",
            "alerts",
            "ticks.quarantine",
            "audit",
            "control",
            "registry",
        ),
        ("control", "registry"),
    ),
    # tickwise watch: the audit trail and the decisions it checks, the raw ticks' keys (feed
    # staleness), the control topic (the kill switches in force) and the registry's log; it
    # writes its alerts, and on control the commands its anomaly policies issue (halt an
    # instrument or the book)
    "watch": (("ticks.raw", "decisions", "audit", "control", "registry"), ("alerts", "control")),
}
# The validator reads its own outputs: restart recovery rebuilds its state from their tails.
WORKER_ROLES = ("validator", "features", "model", "risk", "audit")
# Topics only the worker reads and writes: its own state, which no role's job touches.
WORKER_STATE = ("checkpoints",)
# The watchtower's faust app id and group, ``[watch] group_id``'s default behind the topic prefix;
# its tables' changelogs and faust's leader topic are named "<app id>-...".
WATCH_APP = "tickwise-watch"
# Every login a deployment needs: the super user, one per role, and the worker's.
PRINCIPALS = (ADMIN, *ROLE_ACCESS, "worker")


def new_credentials(principals: tuple[str, ...] = PRINCIPALS) -> dict[str, str]:
    """Random passwords (URL-safe, 24 characters) for ``principals``: nothing to quote anywhere."""
    return {user: secrets.token_urlsafe(18) for user in principals}


def load_credentials(path: str | Path) -> dict[str, str]:
    """Read ``{principal: password}`` from a JSON file."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of principal -> password")
    return data


def client_config(username: str | None = None, password: str | None = None) -> dict[str, str]:
    """SASL settings for a confluent-kafka client, from arguments, environment or file.

    Examples
    --------
    >>> client_config("feed", "pw")["sasl.mechanism"]
    'SCRAM-SHA-512'
    """
    username = username or os.environ.get("TICKWISE_SASL_USERNAME")
    if username and password is None:
        password = os.environ.get("TICKWISE_SASL_PASSWORD")
        path = os.environ.get("TICKWISE_CREDENTIALS_FILE")
        if not password and path:
            password = load_credentials(path).get(username)
    if not username or not password:  # an empty password is a missing one
        raise ValueError("no SASL credentials: set TICKWISE_SASL_USERNAME and _PASSWORD (or _FILE)")
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": username,
        "sasl.password": password,
    }


def env_client_config() -> dict[str, str]:
    """SASL settings when ``TICKWISE_SASL_USERNAME`` is set, else none (a PLAINTEXT broker).

    Every tickwise client (feed, worker, taps, topic tools) adds these to its settings, so one
    environment variable pair points a whole deployment at the secure profile.
    """
    if not os.environ.get("TICKWISE_SASL_USERNAME"):
        return {}
    return client_config()


def faust_credentials() -> Any:
    """The same login for the faust worker (aiokafka), or None on a PLAINTEXT broker."""
    config = env_client_config()
    if not config:
        return None
    import faust

    return faust.SASLCredentials(
        username=config["sasl.username"], password=config["sasl.password"], mechanism=MECHANISM
    )


def acl_bindings(prefix: str = "", app_id: str = "tickwise") -> list[Any]:
    """Every ACL of the policy: topic READ/WRITE/DESCRIBE per role, groups by role prefix."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    # here, not at the top: the broker launcher imports this module while `tickwise --help`
    # builds its parser, which must not load pydantic
    from tickwise.schemas.topics import Topics

    topics = Topics(prefix)
    allow = AclPermissionType.ALLOW
    out = []
    for role, (reads, writes) in ROLE_ACCESS.items():
        principal = f"User:{role}"
        wanted = [(t, AclOperation.READ) for t in reads] + [(t, AclOperation.WRITE) for t in writes]
        wanted += [(t, AclOperation.DESCRIBE) for t in sorted(set(reads) | set(writes))]
        for name, op in wanted:
            out.append(
                AclBinding(
                    ResourceType.TOPIC,
                    f"{topics.prefix}{name}",
                    ResourcePatternType.LITERAL,
                    principal,
                    "*",
                    op,
                    allow,
                )
            )
        if reads:
            out.append(
                AclBinding(
                    ResourceType.GROUP,
                    f"{topics.prefix}tickwise-{role}",
                    ResourcePatternType.PREFIXED,
                    principal,
                    "*",
                    AclOperation.READ,
                    allow,
                )
            )
    # The worker runs the validate and decide agents in one faust app (one principal): it
    # needs the stages' topics, its group (the app id) and faust's own topics (app id prefix).
    worker = "User:worker"
    reads = {t for r in WORKER_ROLES for t in ROLE_ACCESS[r][0]} | set(WORKER_STATE)
    writes = {t for r in WORKER_ROLES for t in ROLE_ACCESS[r][1]} | set(WORKER_STATE)
    wanted = [(t, AclOperation.READ) for t in sorted(reads)]
    wanted += [(t, AclOperation.WRITE) for t in sorted(writes)]
    wanted += [(t, AclOperation.DESCRIBE) for t in sorted(reads | writes)]
    for name, op in wanted:
        out.append(
            AclBinding(
                ResourceType.TOPIC,
                f"{topics.prefix}{name}",
                ResourcePatternType.LITERAL,
                worker,
                "*",
                op,
                allow,
            )
        )
    # ...and its transactional producers, one per raw partition, named "<app_id>.<topic>.<p>"
    # (prefixed like the group, so "tickwise-desk1" is covered by the default "tickwise")
    for restype, name in (
        (ResourceType.GROUP, app_id),
        (ResourceType.TOPIC, f"{app_id}-"),
        (ResourceType.TRANSACTIONAL_ID, app_id),
    ):
        out.append(
            AclBinding(
                restype, name, ResourcePatternType.PREFIXED, worker, "*", AclOperation.ALL, allow
            )
        )
    # The watchtower's own topics (its tables' changelogs, faust's leader topic), which faust
    # creates; and a look at the workers' group (members, committed offsets), nothing more
    watch = "User:watch"
    for op in (AclOperation.CREATE, AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE):
        out.append(
            AclBinding(
                ResourceType.TOPIC,
                f"{topics.prefix}{WATCH_APP}-",
                ResourcePatternType.PREFIXED,
                watch,
                "*",
                op,
                allow,
            )
        )
    out.append(
        AclBinding(
            ResourceType.GROUP,
            app_id,
            ResourcePatternType.LITERAL,
            watch,
            "*",
            AclOperation.DESCRIBE,
            allow,
        )
    )
    return out


def apply_policy(
    bootstrap: str, admin: dict[str, str], prefix: str = "", app_id: str = "tickwise"
) -> int:
    """Create the policy's ACLs (idempotent: Kafka keeps one copy of a binding)."""
    from confluent_kafka.admin import AdminClient

    client = AdminClient({"bootstrap.servers": bootstrap, **admin})
    bindings = acl_bindings(prefix, app_id)
    for future in client.create_acls(bindings, request_timeout=30).values():
        future.result(timeout=30)
    return len(bindings)


def ensure_users(bootstrap: str, admin: dict[str, str], passwords: dict[str, str]) -> None:
    """Create or update the SCRAM credentials of every role principal."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    client = AdminClient({"bootstrap.servers": bootstrap, **admin})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts = [
        UserScramCredentialUpsertion(user, info, password.encode())
        for user, password in passwords.items()
        if user != ADMIN
    ]
    for future in client.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)
