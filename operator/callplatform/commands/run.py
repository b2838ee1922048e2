"""`callplatform run`: the operator, as it runs in production (kopf plus its HTTP endpoints).

Peering is explicit: `--standalone` (the default: kopf's own peering is off) or
`--peering NAME --priority N` (needs kopf's peering CRDs). For several replicas
use `--leader-elect` (a coordination.k8s.io Lease, see callplatform.leadership):
only the holder starts kopf, so at most one replica ever reconciles.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from callplatform import leadership
from callplatform.commands.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="Watch this namespace (repeatable)."
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="Watch every namespace.")
    parser.add_argument("--http-host", default="0.0.0.0", help="Address of /healthz, /readyz, /metrics.")  # noqa: S104
    parser.add_argument("--http-port", type=int, default=8080, help="Port of /healthz, /readyz, /metrics.")
    parser.add_argument(
        "--resync-seconds", type=float, default=60.0, help="Reconcile every platform this often (default 60)."
    )
    parser.add_argument("--workers", type=int, default=2, help="Platforms reconciled in parallel.")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true", help="No peering (default).")
    peering.add_argument("--peering", metavar="NAME", help="kopf peering object for leader election.")
    parser.add_argument("--priority", type=int, default=0, help="Peering priority (with --peering).")
    parser.add_argument("--verbose", "-v", action="store_true", help="Debug logging.")
    leadership.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import kopf
    from kubernetes.config import ConfigException

    from callplatform.handlers import Operator, OperatorOptions
    from callplatform.httpserver import OperatorHttpServer

    if args.priority and not args.peering:
        raise UsageError("--priority needs --peering NAME")
    if args.leader_elect and args.peering:
        raise UsageError("choose --leader-elect or --peering, not both")
    if args.leader_elect:
        try:
            leadership.settings_from_arguments(args)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.resync_seconds <= 0:
        raise UsageError("--resync-seconds must be positive")
    if not args.all_namespaces and not args.namespace:
        raise UsageError("choose --namespace NS (repeatable) or --all-namespaces")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The Kubernetes client logs request bodies at DEBUG, and those include Secrets.
    logging.getLogger("kubernetes").setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.INFO)
    options = OperatorOptions(
        namespaces=tuple(args.namespace),
        resync_seconds=args.resync_seconds,
        workers=args.workers,
        http_host=args.http_host,
        http_port=args.http_port,
    )
    server = OperatorHttpServer(host=args.http_host, port=args.http_port)
    try:
        operator = Operator(options, http_server=server)
    except ConfigException as exc:
        raise UsageError(f"no Kubernetes credentials: {exc}") from None
    registry = kopf.OperatorRegistry()
    operator.register(registry)
    settings = kopf.OperatorSettings()
    # With a namespace list, kopf must not list namespaces or watch CRDs (cluster-scoped reads):
    # the chart then grants namespaced Roles only.
    settings.scanning.disabled = bool(args.namespace)

    async def operate() -> None:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=not args.peering,
            peering_name=args.peering,
            priority=args.priority,
            clusterwide=args.all_namespaces,
            namespaces=tuple(args.namespace),
            insights=operator.insights,
        )

    # With --leader-elect, stand by (the HTTP server in standby mode) until this replica holds the
    # Lease (callplatform.leadership); one event loop and one HTTP server throughout.
    asyncio.run(leadership.run_while_leading(args, server, operate))
    return 0
