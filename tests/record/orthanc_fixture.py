"""A real Orthanc PACS for the tests: started from a temporary configuration, stopped after.

:func:`running_orthanc` starts ``Orthanc`` (Debian's package) on free localhost ports with its
storage in a temporary folder, waits until its REST API answers, and stops it on exit. A
machine without Orthanc fails the test with the command that installs it: a PACS test that
skips silently would pass without ever sending a file.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: where Debian's ``orthanc`` package installs the server (/usr/sbin may not be on PATH)
ORTHANC_PATHS = ("/usr/sbin/Orthanc",)
INSTALL_HINT = "sudo apt-get install orthanc"
#: the AE title the test Orthanc answers to
ORTHANC_AET = "ORTHANC"
#: Orthanc starts in about 1 s; this bounds a slow, busy machine
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0


def orthanc_binary() -> str:
    """The Orthanc executable, or a test failure naming the install command."""
    found = shutil.which("Orthanc") or next((p for p in ORTHANC_PATHS if Path(p).is_file()),
                                            None)
    if found is None:
        pytest.fail(f"Orthanc (the PACS these tests store to) is not installed: {INSTALL_HINT}",
                    pytrace=False)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Orthanc:
    """A running test Orthanc: its DICOM and HTTP ports on 127.0.0.1 and its log file."""

    dicom_port: int
    http_port: int
    log: Path
    aet: str = ORTHANC_AET

    @property
    def pacs(self) -> str:
        """Its ``--pacs`` argument."""
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def get(self, path: str) -> bytes:
        """The body of ``GET path`` from its REST API."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                    timeout=10) as response:
            return bytes(response.read())

    def get_json(self, path: str) -> Any:
        """``GET path`` from its REST API, decoded as JSON."""
        return json.loads(self.get(path))

    def delete_all(self) -> None:
        """Forget every stored instance, so each test sees only what it stored."""
        for patient in self.get_json("/patients"):
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.http_port}/patients/{patient}", method="DELETE")
            with urllib.request.urlopen(request, timeout=10):
                pass


def _configuration(folder: Path, dicom_port: int, http_port: int) -> dict[str, Any]:
    return {
        "Name": "sonobridge-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        # refuse an association addressed to another AE title (the wrong-AET test needs it)
        "DicomCheckCalledAet": True,
        # accept any calling AE title, so SONOBRIDGE needs no registration
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": {},
        "Plugins": [],
        "SaveJobs": False,
        "HttpThreadsCount": 4,
        "ConcurrentJobs": 1,
        "StorageCompression": False,
    }


def _answers(orthanc: Orthanc) -> bool:
    try:
        return "DicomAet" in orthanc.get_json("/system")
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextmanager
def running_orthanc(folder: Path) -> Iterator[Orthanc]:
    """Start an Orthanc keeping its files in ``folder``; stop it when the block ends."""
    binary = orthanc_binary()
    dicom_port = free_port()
    http_port = free_port()
    while http_port == dicom_port:  # each port was free when asked; they must also differ
        http_port = free_port()
    orthanc = Orthanc(dicom_port, http_port, folder / "orthanc.log")
    config = folder / "orthanc.json"
    config.write_text(json.dumps(_configuration(folder, orthanc.dicom_port, orthanc.http_port),
                                 indent=2))
    with orthanc.log.open("wb") as log:
        proc = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=folder)
    try:
        # Orthanc opens its DICOM port before its web server: a /system answer means both
        deadline = time.monotonic() + START_DEADLINE_S
        while not _answers(orthanc):
            if proc.poll() is not None:
                pytest.fail(f"Orthanc exited with code {proc.returncode} while starting:\n"
                            f"{orthanc.log.read_text(errors='replace')[-3000:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not answer on port {orthanc.http_port} within "
                            f"{START_DEADLINE_S:g} s:\n"
                            f"{orthanc.log.read_text(errors='replace')[-3000:]}", pytrace=False)
            time.sleep(0.05)  # poll interval of the readiness check above, not a wait for it
        yield orthanc
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
