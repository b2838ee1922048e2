"""TLS settings shared by the TURN and HTTP probers: client contexts and certificate expiry."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509

DEFAULT_CERT_EXPIRY_WARNING_SECONDS = 14 * 86400.0


@dataclass(frozen=True, slots=True)
class TlsOptions:
    ca_file: str = ""  # empty: the system trust store
    insecure: bool = False  # skip verification (still reports the certificate's expiry)
    cert_expiry_warning_seconds: float = DEFAULT_CERT_EXPIRY_WARNING_SECONDS


DEFAULT_TLS = TlsOptions()


@lru_cache(maxsize=16)
def client_context(options: TlsOptions) -> ssl.SSLContext:
    """One context per distinct options: loading a trust store is slow and blocks the loop."""
    context = ssl.create_default_context(cafile=options.ca_file or None)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


CA_FILE_ENV = "CALLPLATFORM_PROBE_CA_FILE"
INSECURE_ENV = "CALLPLATFORM_PROBE_INSECURE"


def tls_from_environment(environ: Mapping[str, str] = os.environ) -> TlsOptions:
    """The operator's probe TLS settings: a private CA bundle, or (for labs) no verification."""
    insecure = environ.get(INSECURE_ENV, "").strip().lower() in ("1", "true", "yes")
    return TlsOptions(ca_file=environ.get(CA_FILE_ENV, "").strip(), insecure=insecure)


_warming: dict[TlsOptions, asyncio.Future[ssl.SSLContext]] = {}


async def warm_context(options: TlsOptions) -> None:
    """Build the context in a worker thread, once: loading a trust store takes ~0.1-0.3 s."""
    future = _warming.get(options)
    if future is None or future.get_loop() is not asyncio.get_running_loop():
        future = asyncio.ensure_future(asyncio.to_thread(client_context, options))
        _warming[options] = future
    await asyncio.shield(future)


def cert_not_after(der: bytes | None) -> float | None:
    """The certificate's notAfter as a Unix timestamp, or None if there is no certificate."""
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


def expiring(not_after: float | None, now: float, options: TlsOptions) -> bool:
    return not_after is not None and not_after - now < options.cert_expiry_warning_seconds
