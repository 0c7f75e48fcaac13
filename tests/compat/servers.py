"""Child server processes for the tests: start on a free loopback port, wait until they answer
HTTP, stop with SIGTERM, and keep their logs for failure reports."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A started child process, its URL and log file."""

    process: subprocess.Popen
    url: str
    log_path: Path
    data_dir: Path | None = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def wait_until_ready(server: ServerProcess, name: str, timeout: float = 60.0) -> None:
    """Waits until the server answers HTTP at all (any status counts as ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with status {server.process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            requests.get(server.url + "/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} was not ready after {timeout}s:\n{server.log_tail()}")


# Servers started in this session, named, so failures can show their logs.
_SERVERS: dict[str, ServerProcess] = {}


def start_process(name: str, args: list[str], env: dict, log_path: Path, url: str) -> ServerProcess:
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = ServerProcess(process=process, url=url, log_path=log_path)
    _SERVERS[name] = server
    return server


def log_sections() -> list[tuple[str, str]]:
    """(title, tail) of every server started in this session: the sluice logs at length, the
    S3 server's request log only briefly."""
    return [
        (f"{name} log", server.log_tail(10 if name == "moto" else 30))
        for name, server in _SERVERS.items()
    ]
