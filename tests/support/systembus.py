"""A private system bus for tests: a real dbus-daemon, and python-dbusmock's logind template
on it (a logind whose Inhibit hands out real file descriptors and whose ListInhibitors
drops a lock when its last descriptor closes). Both are started here and stopped by pid.

Point salvage at it with DBUS_SYSTEM_BUS_ADDRESS=<bus.address>.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from dbus_next import BusType, Message, MessageType, Variant
from dbus_next.aio import MessageBus

LOGIND = "org.freedesktop.login1"
PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
MOCK = "org.freedesktop.DBus.Mock"

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    {extra}
  </policy>
</busconfig>
"""
# What the system bus of a host without a polkit rule for salvage says to Inhibit.
DENY_INHIBIT = (
    f'<deny send_destination="{LOGIND}" send_interface="{MANAGER}" send_member="Inhibit"/>'
)


def mock_python() -> Optional[str]:
    """A Python whose dbusmock can serve the logind template (it needs PyGObject too):
    Debian's python3-dbusmock, or this Python if it has both from PyPI."""
    for python in (sys.executable, "/usr/bin/python3"):
        if Path(python).exists():
            found = subprocess.run(
                [python, "-c", "import dbusmock.templates.logind"], capture_output=True
            )
            if found.returncode == 0:
                return python
    return None


class SystemBus:
    def __init__(self, policy: str = "") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="salvage-bus-"))
        self.address = f"unix:path={self.base}/system_bus_socket"
        (self.base / "bus.conf").write_text(
            CONFIG.format(socket=self.base / "system_bus_socket", extra=policy)
        )
        self.daemon: Optional[subprocess.Popen] = None
        self.logind: Optional[subprocess.Popen] = None

    def start(self) -> SystemBus:
        self.daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.base / 'bus.conf'}", "--nofork", "--nopidfile"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._until(lambda: (self.base / "system_bus_socket").exists(), "dbus-daemon")
        return self

    def __enter__(self) -> SystemBus:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start_logind(self) -> SystemBus:
        python = mock_python()
        if python is None:
            raise RuntimeError("no dbusmock logind: run scripts/install-deps (python3-dbusmock)")
        self.logind = subprocess.Popen(
            [python, "-m", "dbusmock", "--system", "--template", "logind"],
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.address, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._until(lambda: self._has_logind(), "dbusmock's logind")
        return self

    def _has_logind(self) -> bool:
        reply = self.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=[LOGIND],
            )
        )
        return reply.body == [True]

    def _until(self, ready, what: str) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            for proc in (self.daemon, self.logind):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{what} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)

    def call(self, message: Message) -> Message:
        async def call() -> Message:
            bus = await MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM).connect()
            try:
                return await asyncio.wait_for(bus.call(message), 10)
            finally:
                bus.disconnect()

        reply = asyncio.run(call())
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{message.member}: {reply.error_name}: {reply.body}")
        return reply

    def inhibitors(self) -> List[tuple]:
        """logind's locks: (what, who, why, mode, uid, pid) each."""
        reply = self.call(
            Message(destination=LOGIND, path=PATH, interface=MANAGER, member="ListInhibitors")
        )
        return [tuple(entry) for entry in reply.body[0]]

    def salvage_locks(self) -> List[tuple]:
        return [entry for entry in self.inhibitors() if entry[1] == "salvage"]

    def emit_prepare(self, member: str = "PrepareForShutdown", starting: bool = True) -> None:
        """logind announces a shutdown (or sleep), as it does before it goes ahead."""
        self.call(
            Message(
                destination=LOGIND,
                path=PATH,
                interface=MOCK,
                member="EmitSignal",
                signature="sssav",
                body=[MANAGER, member, "b", [Variant("b", starting)]],
            )
        )

    def stop(self) -> None:
        for proc in (self.logind, self.daemon):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
