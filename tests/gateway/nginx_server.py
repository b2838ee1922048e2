"""A real nginx (Debian's) on a free loopback port, serving chosen headers per location over TLS.

nginx runs in the foreground from a temporary prefix (config, logs, pid and temp dirs all
inside it), so nothing touches /etc/nginx or port 80.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from probes.servers import TlsFiles, free_port, make_self_signed, require, stop_process, wait_for_tcp

NGINX = "/usr/sbin/nginx"

# location (an nginx location spec such as "= /good/" or "/good/call") -> headers it adds
Locations = Mapping[str, Mapping[str, str]]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_config(prefix: Path, port: int, tls: TlsFiles, locations: Locations) -> str:
    blocks = []
    for location, headers in locations.items():
        lines = [f"add_header {name} {_quoted(value)} always;" for name, value in headers.items()]
        blocks.append(f"    location {location} {{\n      {' '.join(lines)}\n      return 200 'ok';\n    }}")
    body = "\n".join(blocks)
    temp = prefix / "tmp"
    return f"""
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  server_tokens off;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tls.cert};
    ssl_certificate_key {tls.key};
    location / {{ return 404; }}
{body}
  }}
}}
"""


@contextlib.contextmanager
def running_nginx(workdir: Path, locations: Locations) -> Iterator[tuple[int, TlsFiles]]:
    """(port, TLS files): https://127.0.0.1:<port>/ with the certificate as its own CA."""
    require(NGINX, "nginx-light")
    prefix = workdir / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    tls = make_self_signed(workdir / "tls", name="localhost")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, tls, locations))
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr
    log = prefix / "error.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_tcp(port, process, log, "nginx")
        yield port, tls
    finally:
        stop_process(process)
