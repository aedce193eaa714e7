"""Where and how the console may listen: TLS from a certificate and key, and no plain HTTP
beyond loopback unless the operator says ``--insecure``.

Bearer tokens travel in every request, so a console reachable from other machines over plain
HTTP hands them to anyone on the path. Loopback traffic never leaves the host, which is why it
alone may go without TLS by default. The checks run before the socket is bound, so a refused
console never listens, not even for a moment.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path

# TLS 1.2 is the oldest version without known protocol breaks (1.0 and 1.1 are deprecated by
# RFC 8996); every browser and Prometheus speak 1.3 as well, which the context also offers.
MIN_TLS = ssl.TLSVersion.TLSv1_2


class DoorError(ValueError):
    """The console was asked to listen in a way it refuses."""


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side TLS context from a PEM certificate (chain) and its private key.

    Raises ``DoorError`` naming the file when either cannot be read or they do not match.
    """
    for path in (cert, key):
        if not Path(path).is_file():
            raise DoorError(f"TLS: no such file: {path}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_TLS
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        raise DoorError(f"TLS: cannot use certificate {cert} with key {key}: {exc}") from exc
    return context


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address.

    An empty host or a wildcard (``0.0.0.0``, ``::``) listens on every interface, so it is not
    loopback; a name that does not resolve is not either (refusing is the safe answer).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("")
    (True, True, False, False)
    """
    if not host:
        return False
    try:
        return _loopback_address(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(_loopback_address(a) for a in addresses)


def _loopback_address(text: str) -> bool:
    """Loopback for an address literal; an IPv4-mapped IPv6 address by its IPv4 part (Python
    before 3.13 calls ``::ffff:127.0.0.1`` not loopback, yet only loopback traffic reaches it)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_listen(
    host: str, cert: str | None, key: str | None, insecure: bool
) -> ssl.SSLContext | None:
    """The TLS context to serve with (None: plain HTTP), or ``DoorError`` saying why not.

    Plain HTTP is allowed on loopback, or anywhere with ``insecure``; a certificate without
    its key (or the reverse) is an error rather than a silent fall-back to plain HTTP.
    """
    if bool(cert) != bool(key):
        raise DoorError("TLS needs both --tls-cert and --tls-key")
    if cert and key:
        return server_context(cert, key)
    if not insecure and not is_loopback(host):
        raise DoorError(
            f"refusing to serve plain HTTP on {host or 'every interface'}: bearer tokens would "
            "cross the network in clear text. Give --tls-cert and --tls-key, listen on "
            "127.0.0.1, or pass --insecure if something in front of the console terminates TLS"
        )
    return None
