"""`reelay.ssrf`: URL rules, address classes, and requests pinned to the checked address.

Offline: no test resolves a name through real DNS; each passes its own resolver.
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelay.settings import Settings
from reelay.ssrf import (
    UnsafeURLError,
    check_url,
    check_webhook_host,
    check_webhook_url,
    pinned_stream,
)
from tests.conftest import isolated_settings
from tests.support import Receiver, Reply, resolver_for


def plain_settings(*allow: str) -> Settings:
    return isolated_settings(webhook_allow_hosts=list(allow), webhook_timeout_seconds=5.0)


@pytest.mark.parametrize(
    ("url", "rule", "address"),
    [
        ("https://127.0.0.1/hook", "a private or loopback address", "127.0.0.1"),
        ("https://10.0.0.1/hook", "a private or loopback address", "10.0.0.1"),
        ("https://172.16.5.4/", "a private or loopback address", "172.16.5.4"),
        ("https://192.168.1.1/", "a private or loopback address", "192.168.1.1"),
        ("https://100.64.0.1/", "a private or loopback address", "100.64.0.1"),
        ("https://169.254.169.254/latest", "a link-local or metadata address", "169.254.169.254"),
        ("https://[::1]/hook", "a private or loopback address", "::1"),
        ("https://[fd00::1]/", "a private or loopback address", "fd00::1"),
        ("https://[fe80::1]/", "a link-local or metadata address", "fe80::1"),
        ("https://[::ffff:10.0.0.1]/", "a private or loopback address", "::ffff:a00:1"),
        ("https://[64:ff9b::a9fe:a9fe]/", "a link-local or metadata address", "64:ff9b::a9fe:a9fe"),
        ("https://224.0.0.1/", "a multicast address", "224.0.0.1"),
        ("https://0.0.0.0/", "an unspecified address", "0.0.0.0"),
        ("https://240.0.0.1/", "a reserved address", "240.0.0.1"),
        ("https://127.1/", "a private or loopback address", "127.0.0.1"),
        ("https://2130706433/", "a private or loopback address", "127.0.0.1"),
        ("https://localhost:8443/", "a private or loopback address", "localhost"),
        ("https://api.localhost/", "a private or loopback address", "api.localhost"),
    ],
)
def test_submit_check_refuses_non_public_addresses(url: str, rule: str, address: str) -> None:
    with pytest.raises(UnsafeURLError) as refused:
        check_webhook_url(url, plain_settings())
    assert str(refused.value) == f"webhook_url must not point to {rule} ({address})"


def test_refusal_names_the_field_and_the_rule() -> None:
    with pytest.raises(UnsafeURLError, match=r"^webhook_url must not point to a private or "):
        check_webhook_url("https://10.0.0.1/x", plain_settings())
    with pytest.raises(UnsafeURLError, match=r"^webhook_url must use https \(http is allowed"):
        check_webhook_url("http://hooks.example.com/x", plain_settings())
    with pytest.raises(UnsafeURLError, match=r"^webhookUrl must not point to a link-local"):
        check_webhook_url("https://169.254.169.254/", plain_settings(), field="webhookUrl")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "https://", ""])
def test_submit_check_refuses_what_is_not_an_https_url(url: str) -> None:
    with pytest.raises(UnsafeURLError, match=r"^webhook_url "):
        check_webhook_url(url, plain_settings())


def test_public_https_names_pass_the_submit_check_without_dns() -> None:
    for url in (
        "https://example.com/hook",
        "https://hooks.example.com:8443/a?b=c",
        "https://8.8.8.8/",
    ):
        check_webhook_url(url, plain_settings())


def test_allow_listed_hosts_may_use_http_and_private_addresses() -> None:
    settings = plain_settings("127.0.0.1", "[::1]", "localhost", "Hooks.Internal")
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://[::1]:9000/",
        "http://localhost/x",
        "http://hooks.internal/x",
    ):
        check_webhook_url(url, settings)
    with pytest.raises(UnsafeURLError):
        check_webhook_url("http://10.0.0.1/", settings)


async def test_every_resolved_address_must_be_public() -> None:
    resolve = resolver_for(
        {
            "hooks.example": ["93.184.216.34", "10.0.0.5"],
            "rebind.example": ["127.0.0.1"],
            "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
        }
    )
    settings = plain_settings()
    with pytest.raises(UnsafeURLError, match=r"private or loopback address \(10\.0\.0\.5\)"):
        await check_url("https://hooks.example/", settings, field="webhook_url", resolver=resolve)
    with pytest.raises(UnsafeURLError, match=r"^image_url must not point to .*\(127\.0\.0\.1\)"):
        await check_url("https://rebind.example/", settings, field="image_url", resolver=resolve)
    checked = await check_url(
        "https://public.example/hook", settings, field="webhook_url", resolver=resolve
    )
    assert checked.address == "93.184.216.34"
    assert str(checked.pinned_url) == "https://93.184.216.34/hook"
    assert checked.host_header == "public.example"


async def test_a_name_resolving_to_loopback_is_refused_unless_allow_listed() -> None:
    resolve = resolver_for({"localhost": ["::1", "127.0.0.1"]})
    with pytest.raises(UnsafeURLError, match="private or loopback"):
        await check_url(
            "https://localhost/", plain_settings(), field="webhook_url", resolver=resolve
        )
    checked = await check_url(
        "http://localhost:8080/", plain_settings("localhost"), field="webhook_url", resolver=resolve
    )
    assert (checked.address, checked.host_header) == ("::1", "localhost:8080")
    assert str(checked.pinned_url) == "http://[::1]:8080/"


async def test_a_name_that_does_not_resolve_is_a_network_error() -> None:
    with pytest.raises(httpx.ConnectError, match=r"nowhere\.example does not resolve"):
        await check_url(
            "https://nowhere.example/",
            plain_settings(),
            field="webhook_url",
            resolver=resolver_for({}),
        )


async def test_the_request_goes_to_the_checked_address_with_the_original_host() -> None:
    calls: list[str] = []
    with Receiver() as receiver:
        settings = plain_settings("hooks.test")
        resolve = resolver_for({"hooks.test": ["127.0.0.1"]}, calls)
        checked = await check_url(
            f"http://hooks.test:{receiver.port}/in?x=1",
            settings,
            field="webhook_url",
            resolver=resolve,
        )
        async with pinned_stream(checked, "POST", time_limit=5, content=b"{}") as response:
            assert response.status_code == 204
    assert calls == ["hooks.test"]  # resolved once: the connection did not ask DNS again
    [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/in?x=1", b"{}")
    assert request.headers["host"] == f"hooks.test:{receiver.port}"


async def test_redirects_are_returned_not_followed() -> None:
    redirect = Reply(302, {"Location": "/elsewhere"})
    with Receiver([redirect]) as receiver:
        checked = await check_url(receiver.url(), plain_settings("127.0.0.1"), field="webhook_url")
        async with pinned_stream(checked, "POST", time_limit=5) as response:
            assert response.status_code == 302
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_the_time_limit_bounds_the_whole_exchange() -> None:
    with Receiver(delay=10) as receiver:
        checked = await check_url(receiver.url(), plain_settings("127.0.0.1"), field="webhook_url")
        with pytest.raises(TimeoutError):
            async with pinned_stream(checked, "POST", time_limit=0.3):
                pass


def _self_signed(tmp: Path, hostname: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_to_the_pinned_address_verifies_the_original_hostname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path, "hooks.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    # Trust the test certificate (the code under test trusts the system's CAs).
    real_client = httpx.AsyncClient
    trusting = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real_client(verify=trusting, **kw))
    resolve = resolver_for({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    settings = plain_settings("hooks.test", "other.test")
    with Receiver(tls=server_tls) as receiver:
        good = await check_url(
            f"https://hooks.test:{receiver.port}/h", settings, field="webhook_url", resolver=resolve
        )
        async with pinned_stream(good, "POST", time_limit=5) as response:
            assert response.status_code == 204
        wrong = await check_url(
            f"https://other.test:{receiver.port}/h", settings, field="webhook_url", resolver=resolve
        )
        with pytest.raises(httpx.ConnectError, match=r"not valid for .other\.test"):
            async with pinned_stream(wrong, "POST", time_limit=5):
                pass
    assert [r.headers["host"] for r in receiver.requests] == [f"hooks.test:{receiver.port}"]


def resolving_to(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def not_resolving() -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    return resolve


async def test_submit_check_refuses_a_host_that_resolves_to_loopback() -> None:
    with pytest.raises(UnsafeURLError, match=r"^webhook_url must not point to .*127\.0\.0\.1"):
        await check_webhook_host(
            "https://sneaky.example.com/hook",
            plain_settings(),
            resolver=resolving_to("93.184.216.34", "127.0.0.1"),
        )


async def test_submit_check_lets_a_host_that_does_not_resolve_yet_pass() -> None:
    await check_webhook_host(
        "https://later.example.com/hook", plain_settings(), resolver=not_resolving()
    )
    await check_webhook_host(
        "https://public.example.com/hook", plain_settings(), resolver=resolving_to("8.8.8.8")
    )


@pytest.mark.parametrize("url", ["https://exa mple.com/", "https://a..b/", "https://a%00b.com/"])
def test_submit_check_refuses_malformed_host_names(url: str) -> None:
    with pytest.raises(UnsafeURLError, match=r"^webhook_url "):
        check_webhook_url(url, plain_settings())
