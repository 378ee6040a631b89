"""Hosts on one machine for the multi-host tests: each a Linux network namespace with its own
address on a private switch, its own processes and its own empty ``DATA_DIR``.

The switch is a bridge inside a namespace of its own, joined to each host by a veth pair, so
that the hosts reach each other and nothing else: the machine's own namespace has no interface
on that network and the hosts have no route out (traffic stays inside). Needs root and iproute2
(``ip netns``), as CI has.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUBNET = "10.231.{n}.{host}"


def available() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"rgprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "-n", netns, *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


class Host:
    """One namespace: ``name``, ``address``, and the processes started in it."""

    def __init__(self, network: Network, name: str, address: str, data_dir: Path) -> None:
        self.network = network
        self.name = name
        self.netns = f"{network.prefix}-{name}"
        self.address = address
        self.data_dir = data_dir
        self.processes: list[subprocess.Popen[Any]] = []

    def command(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns]
        if user is not None:
            prefix += ["runuser", "-u", user, "--"]
        return [*prefix, *argv]

    def run(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 600)
        return subprocess.run(self.command(argv), env=env, **kwargs)

    def start(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[Any]:
        with log.open("a") as out:
            proc = subprocess.Popen(
                self.command(argv, user=user),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process running in this namespace (whoever started it)."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def kill_all(self) -> int:
        """SIGKILL every process in the host, as a machine losing power would; returns how many."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.processes.clear()
        return len(pids)

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.kill_all()


class Network:
    """A switch and the hosts on it; :meth:`close` removes every namespace it made."""

    def __init__(self, root: Path) -> None:
        self.prefix = f"rg{secrets.token_hex(2)}"
        self.n = 1 + secrets.randbelow(250)
        self.root = root
        self.switch = f"{self.prefix}-sw"
        self.hosts: dict[str, Host] = {}
        subprocess.run(["ip", "netns", "add", self.switch], check=True)
        _ip("link", "add", "br0", "type", "bridge", netns=self.switch)
        _ip("link", "set", "br0", "up", netns=self.switch)
        _ip("link", "set", "lo", "up", netns=self.switch)

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        address = SUBNET.format(n=self.n, host=index)
        host = Host(self, name, address, self.root / name / "data")
        host.data_dir.mkdir(parents=True)
        subprocess.run(["ip", "netns", "add", host.netns], check=True)
        # A veth pair: "eth0" inside the host, "p<index>" on the switch's bridge.
        _ip(
            "link", "add", "eth0", "netns", host.netns,
            "type", "veth", "peer", "name", f"p{index}", "netns", self.switch,
        )  # fmt: skip
        _ip("link", "set", f"p{index}", "master", "br0", netns=self.switch)
        _ip("link", "set", f"p{index}", "up", netns=self.switch)
        _ip("addr", "add", f"{address}/24", "dev", "eth0", netns=host.netns)
        _ip("link", "set", "eth0", "up", netns=host.netns)
        _ip("link", "set", "lo", "up", netns=host.netns)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop_all()
            subprocess.run(["ip", "netns", "del", host.netns], check=False)
        subprocess.run(["ip", "netns", "del", self.switch], check=False)


def wait_for_tcp(host: Host, port: int, *, target: str, timeout: float = 60) -> None:
    """Waits until ``target:port`` accepts a connection from inside ``host``."""
    probe = (
        f"import socket,sys\ns=socket.create_connection(({target!r},{port}),timeout=1)\ns.close()\n"
    )
    deadline = time.monotonic() + timeout
    while True:
        result = host.run(["python3", "-c", probe], check=False, timeout=10)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target}:{port} not reachable from {host.name}: {result.stderr}")
        time.sleep(0.5)
