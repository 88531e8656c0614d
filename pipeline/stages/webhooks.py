"""Webhook delivery: the SSRF guard, signatures, the backoff schedule, one attempt.

No Dramatiq here: the actor (``pipeline.workers.webhooks``) loads a delivery,
calls :func:`attempt_delivery` and records the :class:`AttemptOutcome`.

SSRF: a target is checked when it is registered and again at every attempt.
At an attempt, the session's resolver (:class:`GuardedResolver`) resolves the
host, refuses it when *any* address is forbidden, and hands the checked
addresses to the connector, which connects to them: no second lookup that a
DNS-rebinding server could answer differently.  IP literals never reach a
resolver, so :func:`attempt_delivery` checks them itself first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to, as strings.  Injected in tests.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata endpoints, named even though the generic rules (link-local,
# unique-local) already cover them: they are what an SSRF is after.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Longest gap between two attempts of one delivery.
MAX_RETRY_DELAY_S = 3600.0
USER_AGENT = "T2M-Webhooks/1.0"
# How much of a failing receiver's answer is kept as the delivery's last error.
ERROR_BODY_BYTES = 300


class TargetRefused(OSError):
    """The URL is not an allowed webhook target (the reason is the message).

    An ``OSError`` so that aiohttp's connector lets it through a resolver.
    """


# --- the SSRF guard -------------------------------------------------------------


def allowed_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def address_problem(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a webhook may not be sent to ``address`` (None: it may)."""
    if any(address in network for network in allowed if network.version == address.version):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 is judged as the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded, allowed)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for label, flag in (
        ("a loopback", address.is_loopback),
        ("an unspecified", address.is_unspecified),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
    ):
        if flag:
            return f"{label} address"
    if not address.is_global:  # shared (CGNAT), documentation, benchmarking …
        return "a non-public address"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def target_host(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL; refuses anything but absolute http(s)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    try:
        port = parsed.port
    except ValueError as exc:
        raise TargetRefused("the URL has an invalid port") from exc
    if port is None or not 0 < port < 65536:
        raise TargetRefused("the URL has an invalid port")
    return parsed.host, port


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_addresses(host: str, addresses: Sequence[str], allowed: Sequence[IPNetwork]) -> None:
    """Refuse the host when any of its addresses is forbidden: a client may
    connect to any of them, so one bad address is enough to refuse."""
    if not addresses:
        raise TargetRefused(f"{host} does not resolve to any address")
    for text in addresses:
        address = literal_address(text)
        if address is None:
            raise TargetRefused(f"{host} resolves to an unusable address {text!r}")
        problem = address_problem(address, allowed)
        if problem is not None:
            raise TargetRefused(f"{host} resolves to {address}, {problem}")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_target(
    url: str,
    *,
    allowed: Sequence[IPNetwork] = (),
    resolver: Resolver = system_resolver,
    timeout_s: float = 5.0,
) -> list[str]:
    """Check a URL at registration: shape, then every address it resolves to.

    Returns the addresses; raises :class:`TargetRefused` with the reason.
    """
    host, port = target_host(url)
    literal = literal_address(host)
    if literal is not None:
        check_addresses(host, [str(literal)], allowed)
        return [str(literal)]
    try:
        addresses = await asyncio.wait_for(resolver(host, port), timeout_s)
    except TimeoutError as exc:
        raise TargetRefused(f"{host} did not resolve within {timeout_s:g} s") from exc
    except TargetRefused:
        raise
    except (OSError, UnicodeError, ValueError) as exc:  # IDNA refuses some names
        raise TargetRefused(f"{host} does not resolve") from exc
    check_addresses(host, addresses, allowed)
    return addresses


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever returns checked addresses."""

    def __init__(self, allowed: Sequence[IPNetwork], resolver: Resolver = system_resolver):
        self.allowed = tuple(allowed)
        self.resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self.resolver(host, port)
        except TargetRefused:
            raise
        except (OSError, UnicodeError, ValueError) as exc:
            # An OSError is what the connector turns into a connection error.
            raise OSError(f"{host} does not resolve: {exc}") from exc
        check_addresses(host, addresses, self.allowed)
        results: list[ResolveResult] = []
        for text in addresses:
            address = literal_address(text)
            assert address is not None  # check_addresses refused anything else
            if family in (socket.AF_INET, socket.AF_INET6) and family != (
                socket.AF_INET6 if address.version == 6 else socket.AF_INET
            ):
                continue
            results.append(
                {
                    "hostname": host,
                    "host": str(address),
                    "port": port,
                    "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                    "proto": socket.IPPROTO_TCP,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        return None


def build_session(
    allowed: Sequence[IPNetwork],
    *,
    resolver: Resolver = system_resolver,
    max_connections: int = 100,
) -> aiohttp.ClientSession:
    """The delivery session: guarded resolution, no DNS cache (each new
    connection is checked afresh), no environment proxies, no cookies."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allowed, resolver),
        use_dns_cache=False,
        limit=max_connections,
        limit_per_host=8,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


# --- signatures -------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """``X-T2M-Signature``: what the spec's ``verify_webhook`` snippet checks."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_v2(secret: str, timestamp: int, body: bytes) -> str:
    """``X-T2M-Signature-V2``: also covers the send time, so a receiver that
    rejects old timestamps cannot be fed a recorded delivery again."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={digest}"


def delivery_headers(
    *, secret: str, body: bytes, event: str, delivery_id: str, timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-T2M-Event": event,
        "X-T2M-Delivery": delivery_id,
        "X-T2M-Timestamp": str(timestamp),
        "X-T2M-Signature": signature(secret, body),
        "X-T2M-Signature-V2": signature_v2(secret, timestamp, body),
    }


# --- retries ------------------------------------------------------------------------


def retry_delay(
    failed_attempts: int,
    base_s: float,
    *,
    rand: Callable[[], float] = random.random,
    cap_s: float = MAX_RETRY_DELAY_S,
) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure.

    Exponential (base, 2·base, 4·base … capped) with "equal jitter": half the
    step is fixed, half random, so receivers that come back are not hit by
    every retry at once, yet the gap never shrinks below half the step.
    """
    step = min(cap_s, base_s * 2 ** max(0, failed_attempts - 1))
    return step / 2 + rand() * step / 2


# --- one attempt ----------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    # Retrying cannot help (the target is forbidden): fail the delivery now.
    permanent: bool = False


async def attempt_delivery(
    session: aiohttp.ClientSession,
    *,
    url: str,
    secret: str,
    body: str,
    event: str,
    delivery_id: str,
    timeouts: aiohttp.ClientTimeout,
    allowed: Sequence[IPNetwork] = (),
    clock: Callable[[], float] = time.time,
) -> AttemptOutcome:
    """POST the body once.  2xx is success; anything else — a redirect
    (never followed), an error status, a refused target, a timeout — is a
    failure with a reason."""
    started = time.monotonic()

    def done(
        ok: bool, code: int | None, error: str | None, permanent: bool = False
    ) -> AttemptOutcome:
        elapsed = round((time.monotonic() - started) * 1000, 1)
        return AttemptOutcome(ok, code, error, elapsed, permanent)

    raw = body.encode("utf-8")
    try:
        host, _ = target_host(url)
        literal = literal_address(host)
        if literal is not None:
            check_addresses(host, [str(literal)], allowed)
        headers = delivery_headers(
            secret=secret, body=raw, event=event, delivery_id=delivery_id, timestamp=int(clock())
        )
        async with session.post(
            url, data=raw, headers=headers, allow_redirects=False, timeout=timeouts
        ) as response:
            code = response.status
            if 200 <= code < 300:
                return done(True, code, None)
            answer = await response.content.read(ERROR_BODY_BYTES)
    except TargetRefused as exc:
        return done(False, None, f"refused: {exc}", permanent=True)
    except TimeoutError:
        return done(
            False, None, f"timed out (connect {timeouts.connect} s, total {timeouts.total} s)"
        )
    except aiohttp.ClientConnectorError as exc:
        refused = _refusal(exc)
        if refused is not None:
            return done(False, None, f"refused: {refused}", permanent=True)
        return done(False, None, f"connection failed: {exc.os_error or exc}")
    except aiohttp.ClientError as exc:
        return done(False, None, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        # Whatever a receiver (or a URL) provokes becomes an ordinary failed
        # attempt: an exception here would leave the delivery to be swept and
        # retried forever instead of running out its retry window.
        return done(False, None, f"unexpected {type(exc).__name__}: {exc}")
    if 300 <= code < 400:
        location = response.headers.get("Location", "")
        return done(False, code, f"HTTP {code}: redirects are not followed ({location[:200]})")
    text = answer.decode("utf-8", "replace").strip()
    return done(False, code, f"HTTP {code}" + (f": {text}" if text else ""))


def _refusal(exc: aiohttp.ClientConnectorError) -> TargetRefused | None:
    """The guard's refusal behind a connector error, if that is what it was
    (aiohttp wraps a resolver's ``OSError`` in ``ClientConnectorDNSError``)."""
    for candidate in (exc.os_error, exc.__cause__):
        if isinstance(candidate, TargetRefused):
            return candidate
    return None
