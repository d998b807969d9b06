"""Start a scale-out topology on this machine: two agent replicas and two edges sharing
Postgres (checkpoints, threads, runs, leases) and Redis (event logs), and nginx in front
of the edges when it is installed. Ctrl-C stops everything.

    scripts/scale [--postgres URL] [--redis URL]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("127.0.0.1:50061", "127.0.0.1:50062")
EDGES = ("127.0.0.1:8001", "127.0.0.1:8002")
NGINX_PORT = 8080


def nginx_conf(prefix: Path) -> Path:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"        server {edge} max_fails=0;\n" for edge in EDGES)
    conf = re.sub(r"(upstream glassbox_edges \{\n)(?:\s*server [^\n]+\n)+", rf"\1{servers}", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{NGINX_PORT};")
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", f"http {{\n    access_log off;\n{temp}", 1)
    path = prefix / "nginx.conf"
    path.write_text(f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n{conf}")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    glassbox = str(Path(sys.executable).parent / "glassbox")
    processes: list[subprocess.Popen[bytes]] = []
    for listen in AGENTS:
        processes.append(
            subprocess.Popen(
                [
                    glassbox,
                    "agent",
                    "--listen",
                    listen,
                    "--database",
                    args.postgres,
                    "--redis-url",
                    args.redis,
                ]
            )
        )
    # One gRPC channel per edge, balanced over both replicas (a Session stays on one).
    agents = "ipv4:" + ",".join(AGENTS)
    for listen in EDGES:
        processes.append(
            subprocess.Popen(
                [
                    glassbox,
                    "edge",
                    "--no-auth",
                    "--listen",
                    listen,
                    "--agent",
                    agents,
                ]
            )
        )
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    prefix = Path(tempfile.mkdtemp(prefix="glassbox-nginx-"))
    if nginx:
        processes.append(
            subprocess.Popen(
                [nginx, "-p", str(prefix), "-c", str(nginx_conf(prefix)), "-g", "daemon off;"]
            )
        )
    time.sleep(2)
    front = f"http://127.0.0.1:{NGINX_PORT}/" if nginx else f"http://{EDGES[0]}/"
    print(
        f"glassbox scale: agents {', '.join(AGENTS)}; edges {', '.join(EDGES)}; "
        f"open {front}" + ("" if nginx else " (nginx not installed: no balancer)"),
        flush=True,
    )
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(prefix, ignore_errors=True)
    failed = [p.args for p in processes if p.returncode not in (0, -signal.SIGTERM)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
