"""The console's reader of the watchtower's views (``tickwise watch --web-port``).

A console pointed at a watchtower (``--watch-url``) takes the health and the trading windows
from its ``/watch/health`` and ``/watch/windows`` instead of rebuilding them from the topics'
first offset, so it is ready as soon as it has read one answer and the tail of its topics.
It logs in with a viewer token of the watchtower's users, from ``TICKWISE_WATCH_TOKEN`` (never
the command line); over HTTPS it trusts the system's authorities, or ``--watch-ca`` alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

TOKEN_ENV = "TICKWISE_WATCH_TOKEN"
POLL_S = 1.0
TIMEOUT_S = 5.0
HEALTH, WINDOWS = "/watch/health", "/watch/windows"


class WatchURLError(ValueError):
    """The watchtower's address is not one the console can read."""


@dataclass(frozen=True)
class WatchSource:
    """Where the watchtower's views are and how to log in to them."""

    url: str  # scheme://host:port, no path
    token: str | None = None
    cafile: str | None = None

    @classmethod
    def of(
        cls, url: str, cafile: str | None = None, env: Mapping[str, str] | None = None
    ) -> WatchSource:
        """Check ``url`` (http or https, a host, no path beyond ``/``) and take the token from
        the environment.

        Examples
        --------
        >>> WatchSource.of("http://127.0.0.1:8322/", env={}).url
        'http://127.0.0.1:8322'
        >>> try:
        ...     WatchSource.of("ftp://x", env={})
        ... except WatchURLError as exc:
        ...     print(exc)
        --watch-url: http or https, got 'ftp://x'
        """
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise WatchURLError(f"--watch-url: http or https, got {url!r}")
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise WatchURLError(f"--watch-url: scheme://host:port only, got {url!r}")
        if cafile and parts.scheme != "https":
            raise WatchURLError("--watch-ca is for an https --watch-url")
        return cls(f"{parts.scheme}://{parts.netloc}", env.get(TOKEN_ENV) or None, cafile)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https:"):
            return None
        return ssl.create_default_context(cafile=self.cafile)


Update = Callable[[str, "dict[str, Any] | None", "dict[str, Any] | None", "str | None"], None]


async def read_once(
    session: aiohttp.ClientSession, source: WatchSource
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One answer of each view; raises on any failure (the caller says which)."""
    headers = {"Authorization": f"Bearer {source.token}"} if source.token else {}
    out = []
    for path in (HEALTH, WINDOWS):
        async with session.get(source.url + path, headers=headers) as response:
            if response.status != 200:
                text = (await response.text())[:200]
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text
                )
            out.append(await response.json())
    return out[0], out[1]


async def follow(source: WatchSource, update: Update, first: asyncio.Event) -> None:
    """Read both views every ``POLL_S`` and hand them to ``update`` (url, health, windows,
    error); set ``first`` after the first attempt, answered or not. Runs until cancelled."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    context = source.ssl_context()
    connector = aiohttp.TCPConnector(ssl=context) if context is not None else None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        while True:
            try:
                health, windows = await read_once(session, source)
                update(source.url, health, windows, None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
                log.warning("console: the watchtower at %s did not answer: %s", source.url, detail)
                update(source.url, None, None, detail)
            first.set()
            await asyncio.sleep(POLL_S)
