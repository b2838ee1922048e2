"""TLS settings shared by the TURN and HTTP probers: client contexts and certificate expiry."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509

from callplatform.threadbridge import off_loop

DEFAULT_CERT_EXPIRY_WARNING_SECONDS = 14 * 86400.0
CA_FILE_ENV = "CALLPLATFORM_PROBE_CA_FILE"
INSECURE_ENV = "CALLPLATFORM_PROBE_INSECURE"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    ca_file: str = ""  # empty: the system trust store
    insecure: bool = False  # skip verification (still reports the certificate's expiry)
    cert_expiry_warning_seconds: float = DEFAULT_CERT_EXPIRY_WARNING_SECONDS
    # Where ca_file came from, for error messages only ("--ca-file" in the CLI).
    ca_setting: str = field(default=CA_FILE_ENV, compare=False)


DEFAULT_TLS = TlsOptions()


class TlsConfigError(Exception):
    """The configured CA bundle cannot be loaded. The message names the setting, the path and a
    bounded problem (an OS error or an OpenSSL reason code), never the file's contents."""

    def __init__(self, options: TlsOptions, problem: str) -> None:
        self.setting = options.ca_setting
        self.path = options.ca_file
        self.problem = problem
        super().__init__(f"{self.setting} ({self.path}) is unusable: {problem}")


def _ca_problem(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not a PEM CA bundle ({exc.reason or 'unreadable'})"
    return exc.strerror or type(exc).__name__


@lru_cache(maxsize=16)
def client_context(options: TlsOptions) -> ssl.SSLContext:
    """One context per distinct options: loading a trust store is slow and blocks the loop.

    Raises TlsConfigError when the CA file is missing, unreadable or not PEM; a failure is not
    cached, so fixing the file heals the probes without a restart."""
    try:
        context = ssl.create_default_context(cafile=options.ca_file or None)
    except OSError as exc:  # ssl.SSLError is an OSError
        if not options.ca_file:
            raise
        raise TlsConfigError(options, _ca_problem(exc)) from None
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tls_from_environment(environ: Mapping[str, str] = os.environ) -> TlsOptions:
    """The operator's probe TLS settings: a private CA bundle, or (for labs) no verification."""
    insecure = environ.get(INSECURE_ENV, "").strip().lower() in ("1", "true", "yes")
    return TlsOptions(ca_file=environ.get(CA_FILE_ENV, "").strip(), insecure=insecure)


_warming: dict[TlsOptions, asyncio.Future[ssl.SSLContext]] = {}


async def warm_context(options: TlsOptions) -> None:
    """Build the context in a worker thread, once: loading a trust store takes ~0.1-0.3 s.

    Raises TlsConfigError if the CA file is unusable."""
    future = _warming.get(options)
    if future is None or future.get_loop() is not asyncio.get_running_loop():
        future = asyncio.ensure_future(off_loop(client_context, options))
        _warming[options] = future
    try:
        await asyncio.shield(future)
    except TlsConfigError:
        if _warming.get(options) is future:
            del _warming[options]  # try again next time: the file may have been fixed
        raise


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
