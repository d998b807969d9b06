"""Start a scale-out topology on this machine: agent replicas and edges sharing Postgres
(checkpoints, threads, runs, leases) and Redis (event logs), and nginx in front of the
edges when it is installed.

Every edge balances over every agent replica and routes around one that dies or drains;
nginx balances over the edges. "open …" is printed once every process answers its health
check. A process that dies is reported and the rest go on; Ctrl-C (or SIGTERM) stops
everything, and the exit status is 1 if anything had died.
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
import urllib.request
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
AGENTS = "127.0.0.1:50061,127.0.0.1:50062"
EDGES = "127.0.0.1:8001,127.0.0.1:8002"
FRONT = "127.0.0.1:8080"


def nginx_conf(prefix: Path, edges: list[str], front: str) -> Path:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"        server {edge} max_fails=0;\n" for edge in edges)
    conf = re.sub(r"(upstream glassbox_edges \{\n)(?:\s*server [^\n]+\n)+", rf"\1{servers}", conf)
    conf = conf.replace("listen 8080;", f"listen {front};")
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", f"http {{\n    access_log off;\n{temp}", 1)
    path = prefix / "nginx.conf"
    path.write_text(f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n{conf}")
    return path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        metavar="URL",
        help="the database every agent replica shares (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        metavar="URL",
        help="the Redis holding event logs and cancel signals (default: %(default)s)",
    )
    parser.add_argument(
        "--agents",
        default=AGENTS,
        metavar="HOST:PORT,…",
        help="one agent replica (gRPC) per address (default: %(default)s)",
    )
    parser.add_argument(
        "--edges",
        default=EDGES,
        metavar="HOST:PORT,…",
        help="one edge (HTTP/WebSocket, open: --no-auth) per address (default: %(default)s)",
    )
    parser.add_argument(
        "--front",
        default=FRONT,
        metavar="HOST:PORT",
        help="where nginx listens, in front of the edges (default: %(default)s)",
    )
    parser.add_argument(
        "--graph",
        action="append",
        default=[],
        metavar="NAME=MODULE:ATTR",
        help="host this graph on every agent replica, beside the demo (repeatable)",
    )
    parser.add_argument(
        "--no-nginx", action="store_true", help="no nginx: open the first edge directly"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for every process to be healthy (default: %(default)s)",
    )
    return parser.parse_args()


class Topology:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}  # role and address → process
        self.reported: set[str] = set()

    def start(self, name: str, args: list[str]) -> None:
        self.processes[name] = subprocess.Popen(args)

    def died(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None]

    def report_deaths(self) -> None:
        for name in self.died():
            if name not in self.reported:
                self.reported.add(name)
                code = self.processes[name].returncode
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
                print(f"glassbox scale: {name} exited ({how}); the rest go on", flush=True)

    def alive(self, role: str) -> bool:
        return any(p.poll() is None for n, p in self.processes.items() if n.startswith(role + " "))

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def agent_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def http_ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/readyz", timeout=1.0) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_healthy(topology: Topology, timeout_s: float) -> str:
    """'' once every process answers its health check; else which does not, and why."""
    pending = set(topology.processes)
    deadline = time.monotonic() + timeout_s
    while pending:
        if topology.died():
            return f"{', '.join(topology.died())} exited while starting"
        for name in sorted(pending):
            role, address = name.split(" ", 1)
            if (agent_serving if role == "agent" else http_ready)(address):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            return f"{', '.join(sorted(pending))} not healthy after {timeout_s:g} s"
        time.sleep(0.2)
    return ""


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    edges = [e.strip() for e in args.edges.split(",") if e.strip()]
    glassbox = str(Path(sys.executable).parent / "glassbox")
    nginx = (
        None
        if args.no_nginx
        else shutil.which("nginx")
        or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    )
    prefix = Path(tempfile.mkdtemp(prefix="glassbox-nginx-"))
    redis = ["--redis-url", args.redis, *(f"--graph={graph}" for graph in args.graph)]
    topology = Topology()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        for listen in agents:
            topology.start(
                f"agent {listen}",
                [glassbox, "agent", "--listen", listen, "--database", args.postgres, *redis],
            )
        for listen in edges:
            # Every edge reaches every replica: round robin, health-checked (edge.gateway).
            topology.start(
                f"edge {listen}",
                [glassbox, "edge", "--no-auth", "--listen", listen, "--agent", ",".join(agents)],
            )
        if nginx:
            conf = nginx_conf(prefix, edges, args.front)
            topology.start(
                f"nginx {args.front}",
                [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            )
        problem = wait_healthy(topology, args.ready_timeout)
        if problem:
            print(f"glassbox scale: {problem}; stopping", file=sys.stderr, flush=True)
            return 1
        for name, process in topology.processes.items():
            print(f"glassbox scale: {name} pid {process.pid}", flush=True)
        front = f"http://{args.front}/" if nginx else f"http://{edges[0]}/"
        print(
            f"glassbox scale: open {front}"
            + ("" if nginx or args.no_nginx else " (nginx not installed: no balancer)"),
            flush=True,
        )
        while (
            topology.alive("agent")
            and topology.alive("edge")
            and (not nginx or topology.alive("nginx"))
        ):
            topology.report_deaths()
            time.sleep(0.2)
        topology.report_deaths()
        print("glassbox scale: nothing left to serve with; stopping", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        topology.report_deaths()
    finally:
        topology.stop()
        shutil.rmtree(prefix, ignore_errors=True)
    return 1 if topology.reported else 0


if __name__ == "__main__":
    sys.exit(main())
