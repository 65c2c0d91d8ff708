"""Worker "hosts" on one machine: network namespaces joined to the root namespace by veth
pairs, and a TCP forwarder that makes a server reachable on the host side of those links only.

Needs root and a kernel that allows `ip netns add`; `Hosts.open()` skips the test with the
reason otherwise (also under CI: a kernel or container without namespaces is no broken
set-up). Everything made is removed by `Hosts.close()`, also after a failure."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

import pytest


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip <args>`; raise with its stderr when `check` and it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass
class Host:
    """One namespace: `address` inside it, `gateway` the host side of its veth pair."""

    name: str
    outer: str  # the veth end in the root namespace
    address: str
    gateway: str

    def argv(self, *command: str) -> list[str]:
        """argv running `command` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def cut(self) -> None:
        """Take the link down: packets between this host and the rest stop flowing."""
        ip("link", "set", self.outer, "down")


@dataclass
class Hosts:
    """`count` namespaces with links 10.253.<i>.0/30 (host .1, namespace .2)."""

    count: int
    prefix: str = field(default_factory=lambda: f"tt{os.getpid() % 100000}")
    hosts: list[Host] = field(default_factory=list)

    def open(self) -> list[Host]:
        if shutil.which("ip") is None:
            pytest.skip("the `ip` command (iproute2) is not installed")
        if os.geteuid() != 0:
            pytest.skip("network namespaces need root")
        probe = f"{self.prefix}probe"
        done = ip("netns", "add", probe, check=False)
        if done.returncode != 0:
            pytest.skip(f"the kernel refused `ip netns add`: {done.stderr.strip()}")
        ip("netns", "del", probe, check=False)
        try:
            for i in range(self.count):
                self.hosts.append(self._make(i))
        except Exception:
            self.close()
            raise
        return self.hosts

    def _make(self, i: int) -> Host:
        name, outer, inner = f"{self.prefix}h{i}", f"{self.prefix}o{i}", f"{self.prefix}i{i}"
        host = Host(name, outer, f"10.253.{i}.2", f"10.253.{i}.1")
        ip("netns", "add", name)
        self.hosts.append(host)  # from here on close() removes it
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("addr", "add", f"{host.gateway}/30", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", name, "addr", "add", f"{host.address}/30", "dev", inner)
        ip("-n", name, "link", "set", inner, "up")
        ip("-n", name, "link", "set", "lo", "up")
        self.hosts.pop()
        return host

    def close(self) -> None:
        for host in self.hosts:
            ip("link", "del", host.outer, check=False)  # removes its peer too
            ip("netns", "del", host.name, check=False)
        self.hosts = []


class Forwarder:
    """A TCP forwarder in a thread: accepts on (host, port) and pipes each connection to
    (target_host, target_port). `cut()` closes every connection it carries and accepts no
    more, as a server that notices its clients are gone would."""

    def __init__(self, host: str, port: int, target_host: str, target_port: int) -> None:
        self.host, self.port = host, port
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self.open: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"forwarder-{host}")
        self._thread.start()
        if not self._ready.wait(10) or self._server is None:
            raise RuntimeError(f"the forwarder on {host}:{port} did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            try:
                self._server = await asyncio.start_server(self._serve, self.host, self.port)
            finally:
                self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.open.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.open.difference_update((writer, up_writer))

    def cut(self) -> None:
        async def cut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self.open):
                transport = writer.transport
                transport.abort()  # the upstream server sees its client gone at once

        asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    def close(self) -> None:
        if self.loop.is_running():
            self.cut()
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
