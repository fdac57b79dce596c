"""Outbound HTTP to user-supplied URLs (webhooks, source images) without SSRF.

A URL is checked before every request: `https` only (plain `http` only for an allow-listed
host), and every address its host resolves to must be public unless the host is
allow-listed (`settings.webhook_allow_hosts`). The request then goes to the address that was
checked, never to a second DNS answer (no DNS rebinding): it connects to the pinned IP and
sends the original `Host` header, and TLS verifies the original hostname (SNI).
Redirects are never followed and no proxy from the environment is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from reelay.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> every address the host resolves to (as strings)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PRIVATE = "a private or loopback address"


# A DNS host name (IDNs arrive in their ASCII form); IP literals are checked apart.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# How long a submit waits for the webhook host to resolve before letting delivery check it.
SUBMIT_RESOLVE_SECONDS = 2.0


class UnsafeURLError(ValueError):
    """A URL we refuse to request; the message names the field and the rule."""


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the checks, and the address requests to it must go to."""

    url: httpx.URL
    host: str
    port: int
    address: str

    @property
    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS[self.url.scheme] == self.port else f"{host}:{self.port}"


async def getaddrinfo_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_webhook_url(url: str, settings: Settings, *, field: str = "webhook_url") -> None:
    """Submit-time check of a webhook URL, without DNS: raises `UnsafeURLError`.

    Refuses bad syntax, plain http and literal non-public addresses (and `localhost`)
    unless the host is allow-listed. Each delivery checks again, resolving the host.
    """
    _check_syntax(url, settings, field=field)


async def check_webhook_host(
    url: str,
    settings: Settings,
    *,
    field: str = "webhook_url",
    resolver: Resolver | None = None,
    timeout_seconds: float = SUBMIT_RESOLVE_SECONDS,
) -> None:
    """Submit-time check with DNS: `check_webhook_url`, then every address the host resolves
    to must be public; raises `UnsafeURLError`.

    A host that does not resolve (yet), or not within `timeout_seconds`, passes: the URL may
    be valid later, and each delivery checks again before it connects."""
    check_webhook_url(url, settings, field=field)
    try:
        async with asyncio.timeout(timeout_seconds):
            await check_url(url, settings, field=field, resolver=resolver)
    except (httpx.ConnectError, TimeoutError):
        return


async def check_url(
    url: str, settings: Settings, *, field: str, resolver: Resolver | None = None
) -> CheckedURL:
    """Check `url` and pick the address to connect to; raises `UnsafeURLError`.

    A host that does not resolve raises `httpx.ConnectError` (a network error: retry later).
    """
    parsed, host, allow_listed = _check_syntax(url, settings, field=field)
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await (resolver or getaddrinfo_resolver)(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"{field} host {host} does not resolve: {exc}") from exc
        addresses = [ipaddress.ip_address(address.partition("%")[0]) for address in found]
        if not addresses:
            raise httpx.ConnectError(f"{field} host {host} does not resolve")
    if not allow_listed:
        for address in addresses:
            _refuse_unsafe(address, field=field)
    return CheckedURL(url=parsed, host=host, port=port, address=str(addresses[0]))


@asynccontextmanager
async def pinned_stream(
    checked: CheckedURL,
    method: str,
    *,
    time_limit: float,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> AsyncIterator[httpx.Response]:
    """Send one request to the checked address; the response body is not read yet.

    `time_limit` (seconds) bounds the whole exchange, including reading the body inside the block
    (`TimeoutError` when it runs out). A redirect is returned as it is, never followed.
    """
    async with (
        asyncio.timeout(time_limit),
        httpx.AsyncClient(timeout=time_limit, follow_redirects=False, trust_env=False) as client,
    ):
        extensions = {"sni_hostname": checked.host} if checked.url.scheme == "https" else {}
        request = client.build_request(
            method,
            checked.pinned_url,
            headers={**(headers or {}), "Host": checked.host_header},
            content=content,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            yield response
        finally:
            await response.aclose()


def _check_syntax(url: str, settings: Settings, *, field: str) -> tuple[httpx.URL, str, bool]:
    """(parsed URL, normalized host, is the host allow-listed)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"{field} must be at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise UnsafeURLError(f"{field} is not a valid URL: {exc}") from exc
    if parsed.scheme not in _DEFAULT_PORTS or not host:
        raise UnsafeURLError(f"{field} must be an absolute https:// URL")
    if _HOST_NAME.fullmatch(host) is None and _ip_literal(host) is None:
        raise UnsafeURLError(f"{field} has an invalid host name")
    allow_listed = host in _allow_list(settings)
    if parsed.scheme == "http" and not allow_listed:
        raise UnsafeURLError(
            f"{field} must use https (http is allowed only for allow-listed hosts)"
        )
    if not allow_listed:
        if host == "localhost" or host.endswith(".localhost"):
            raise UnsafeURLError(f"{field} must not point to {_PRIVATE} ({host})")
        literal = _ip_literal(host)
        if literal is not None:
            _refuse_unsafe(literal, field=field)
    return parsed, host, allow_listed


def _allow_list(settings: Settings) -> set[str]:
    return {host.strip("[]").lower().rstrip(".") for host in settings.webhook_allow_hosts}


def _ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, including the forms getaddrinfo accepts (`127.1`, `0x7f.1`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refuse_unsafe(address: IPAddress, *, field: str) -> None:
    reason = _unsafe_reason(address)
    if reason is not None:
        raise UnsafeURLError(f"{field} must not point to {reason} ({address})")


def _unsafe_reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _unsafe_reason(embedded)
    if address.is_loopback:
        return _PRIVATE
    if address.is_link_local:
        return "a link-local or metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or address in _CGNAT:
        return _PRIVATE
    if not address.is_global:
        return "a reserved address"
    return None
