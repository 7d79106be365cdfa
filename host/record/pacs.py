"""``sonobridge store``: send a DICOM file to a picture archive (PACS): C-ECHO, then C-STORE.

The archive is named ``AET@HOST:PORT`` (:class:`PacsAddress`). :func:`store` opens one
association proposing Verification and the file's own SOP class in the file's own transfer
syntax (nothing is re-encoded), checks the archive with C-ECHO, sends the file with C-STORE and
returns the archive's status (:class:`StoreResult`). Everything that goes wrong before a status
comes back raises :class:`PacsError` with a sentence that says what to do. pydicom and
pynetdicom are the ``formats`` extra, imported when a file is sent.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: this side's application entity title unless ``--aet`` names another
DEFAULT_CALLING_AET = "SONOBRIDGE"
#: seconds to wait for the connection, the association and each reply
DEFAULT_TIMEOUT_S = 10.0
#: an AE title's length limit (PS3.5 6.2, value representation AE)
AET_MAX_CHARS = 16
#: the Verification SOP class (C-ECHO)
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
#: one DNS label (RFC 1123): letters, digits and inner hyphens, 1..63 characters
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_EXTRA_HINT = "pip install 'sonobridge[formats]'"


class PacsAddressError(ValueError):
    """An archive address or AE title that cannot be right (an argument mistake)."""


class DicomFileError(ValueError):
    """A file that cannot be sent: missing, not DICOM, or without what C-STORE needs."""


class PacsError(RuntimeError):
    """The archive could not be reached, refused the association, or did not answer."""


def validate_aet(text: str, what: str = "AE title") -> str:
    """``text`` as an AE title: 1..16 characters of ASCII, no backslash or control characters.

    Leading and trailing spaces are not significant in DICOM, so they are removed.
    """
    aet = text.strip(" ")
    if not aet:
        raise PacsAddressError(f"the {what} is empty; it must be 1..{AET_MAX_CHARS} characters "
                               "(e.g. ORTHANC)")
    if len(aet) > AET_MAX_CHARS:
        raise PacsAddressError(f"the {what} {aet!r} has {len(aet)} characters; DICOM allows at "
                               f"most {AET_MAX_CHARS}")
    bad = sorted({c for c in aet if not (" " <= c <= "~") or c == "\\"})
    if bad:
        raise PacsAddressError(f"the {what} {aet!r} contains {', '.join(map(repr, bad))}; DICOM "
                               "allows printable ASCII except backslash")
    return aet


def _validate_host(host: str, text: str) -> str:
    """``host`` if it is an IP address or a DNS name, else :class:`PacsAddressError`."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if host and len(host) <= 253 and all(_HOST_LABEL.fullmatch(lb) for lb in labels):
        return host
    raise PacsAddressError(f"{text!r}: {host!r} is not a host name or IP address")


@dataclass(frozen=True)
class PacsAddress:
    """Where a PACS listens: its AE title, host and TCP port (``AET@HOST:PORT``)."""

    aet: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PacsAddress:
        """``AET@HOST:PORT`` (an IPv6 host in brackets: ``AET@[::1]:4242``), validated."""
        usage = "write it as AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242"
        aet, at, rest = text.rpartition("@")
        if not at:
            raise PacsAddressError(f"{text!r} names no AE title; {usage}")
        host, colon, port = rest.rpartition(":")
        if not colon or not port:
            raise PacsAddressError(f"{text!r} names no port; {usage}")
        if not host:
            raise PacsAddressError(f"{text!r} names no host; {usage}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise PacsAddressError(f"{text!r}: put an IPv6 address in brackets, e.g. "
                                   "ORTHANC@[::1]:4242")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise PacsAddressError(f"{text!r}: the port must be a number in 1..65535 (DICOM's "
                                   f"is 104, Orthanc's default 4242), got {port!r}")
        return cls(validate_aet(aet, "archive's AE title"), _validate_host(host, text), int(port))

    @property
    def endpoint(self) -> str:
        """``HOST:PORT``, an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.aet}@{self.endpoint}"


@dataclass(frozen=True)
class StoreResult:
    """The archive's answer to one C-STORE."""

    pacs: PacsAddress
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    status: int
    #: ``Success``, ``Warning`` or ``Failure`` (pynetdicom's category of the status code)
    category: str
    #: what the status code means (PS3.4 B.2.3, PS3.7 C), "" when there is nothing to add
    meaning: str
    #: the archive's Error Comment (0000,0902), if it sent one
    comment: str = ""

    @property
    def ok(self) -> bool:
        """True if the archive kept the file (success, or a warning)."""
        return self.category in ("Success", "Warning")

    def describe(self) -> str:
        """One sentence: what was stored where, and the status with its meaning."""
        what = f"{_sop_class_name(self.sop_class_uid)} {self.sop_instance_uid}"
        code = f"status 0x{self.status:04X}"
        why = "; ".join(x for x in (self.meaning, self.comment) if x)
        if self.category == "Success":
            return f"stored {what} on {self.pacs} ({code}: success)"
        verb = "stored" if self.category == "Warning" else "did not store"
        why = why or "no reason given"
        return f"{self.pacs} {verb} {what}: {code} ({self.category.lower()}: {why})"


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name


def _read_dicom(path: Path) -> Any:
    """The dataset in ``path``, checked for what C-STORE needs; else :class:`DicomFileError`."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    if not path.is_file():
        raise DicomFileError(f"{path} does not exist or is not a file")
    try:
        ds = dcmread(path)
    except InvalidDicomError:
        raise DicomFileError(_not_dicom(path)) from None
    except (OSError, ValueError, EOFError) as exc:  # truncated or garbled after the preamble
        raise DicomFileError(f"{path} is not a readable DICOM file: {exc}") from None
    meta = ds.file_meta
    missing = [k for k, v in (("SOP Class UID", meta.get("MediaStorageSOPClassUID")
                               or ds.get("SOPClassUID")),
                              ("SOP Instance UID", meta.get("MediaStorageSOPInstanceUID")
                               or ds.get("SOPInstanceUID")),
                              ("Transfer Syntax UID", meta.get("TransferSyntaxUID"))) if not v]
    if missing:
        raise DicomFileError(f"{path} lacks {' and '.join(missing)}, which C-STORE needs")
    # pydicom reads a file cut short (an interrupted copy or export) without complaint
    expected = _native_pixel_bytes(ds)
    if expected is not None and len(ds.PixelData) < expected:
        raise DicomFileError(f"{path} is truncated: its pixel data has {len(ds.PixelData)} of "
                             f"{expected} bytes; export or copy it again")
    return ds


def _not_dicom(path: Path) -> str:
    """Why ``path`` cannot be sent, and how to make a file that can."""
    from .formats import CAPTURE, UnknownFormatError, file_format

    try:
        fmt = file_format(path)
    except (OSError, UnknownFormatError):
        return (f"{path} is not a DICOM file (no 'DICM' after its 128-byte preamble); make one "
                "with `sonobridge export REC.h5 --dicom FILE.dcm`")
    h5 = path.with_suffix(".h5") if fmt is CAPTURE else path
    first = f"`sonobridge convert {path} -o {h5}`, then " if fmt is CAPTURE else ""
    return (f"{path} is a {fmt.name}, not a DICOM file: make one with {first}"
            f"`sonobridge export {h5} --dicom {path.with_suffix('.dcm')}` and store that")


def _native_pixel_bytes(ds: Any) -> int | None:
    """How many bytes uncompressed Pixel Data must have, or None if that cannot be known."""
    if "PixelData" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
        return None
    try:
        n = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
             * int(ds.get("NumberOfFrames", 1) or 1))
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    return (n * bits + 7) // 8


def _unreachable(pacs: PacsAddress, timeout_s: float, elapsed_s: float) -> str:
    """Why no TCP connection to ``pacs`` opened: asks the OS once more for the exact error
    (pynetdicom only logs it) unless the first try already used up the timeout."""
    check = (f"check that the archive is running and listens for DICOM on {pacs.endpoint} "
             "(not its web port)")
    silent = (f"{pacs.endpoint} did not answer within {timeout_s:g} s; {check} and that no "
              "firewall drops the connection")
    if elapsed_s >= timeout_s:
        return silent
    try:
        socket.create_connection((pacs.host, pacs.port), timeout=timeout_s).close()
    except ConnectionRefusedError:
        return f"connection to {pacs.endpoint} refused: nothing listens there; {check}"
    except TimeoutError:
        return silent
    except OSError as exc:
        return f"cannot connect to {pacs.endpoint}: {exc.strerror or exc}; {check}"
    return f"cannot connect to {pacs.endpoint} (it answers now: try again)"


def _rejected(pacs: PacsAddress, calling_aet: str, primitive: Any) -> str:
    """The archive's reason for rejecting the association, and what to change."""
    reason = primitive.reason_str if primitive is not None else "No reason given"
    hint = {
        "Called AE title not recognised": f"its AE title is not {pacs.aet}: put the archive's "
        "own AE title before the @ in --pacs (Orthanc's is DicomAet in its configuration)",
        "Calling AE title not recognised": f"it does not know this side's AE title "
        f"{calling_aet}: register it with the archive (Orthanc: DicomModalities) or pass the "
        "one it knows with --aet",
        "Temporary congestion": "it is busy; try again later",
        "Local limit exceeded": "it has too many associations open; try again later",
    }.get(reason, "see the archive's log for why")
    reason = reason[:1].lower() + reason[1:]  # "called AE title not recognised"
    return f"{pacs} rejected the association ({reason}): {hint}"


def store(path: str | Path, pacs: PacsAddress, *, calling_aet: str = DEFAULT_CALLING_AET,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> StoreResult:
    """Send the DICOM file ``path`` to ``pacs``: C-ECHO, then C-STORE; the archive's status.

    Raises :class:`DicomFileError` for a file that cannot be sent, :class:`PacsAddressError` for
    a bad ``calling_aet``, :class:`PacsError` when no status comes back, and ImportError
    without pynetdicom.
    """
    from pynetdicom import AE, evt
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category

    calling_aet = validate_aet(calling_aet, "calling AE title (--aet)")
    path = Path(path)
    ds = _read_dicom(path)
    sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID") or ds.SOPClassUID)
    instance = str(ds.file_meta.get("MediaStorageSOPInstanceUID") or ds.SOPInstanceUID)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    try:  # resolved here because pynetdicom lets the resolver's error escape as it is
        socket.getaddrinfo(pacs.host, pacs.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PacsError(f"cannot find the host {pacs.host!r} ({exc.strerror}); check the name "
                        "in --pacs") from None
    ae = AE(ae_title=calling_aet)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.add_requested_context(VERIFICATION_SOP_CLASS)
    ae.add_requested_context(sop_class, [syntax])
    opened: list[bool] = []
    start = time.monotonic()
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.aet,
                         evt_handlers=[(evt.EVT_CONN_OPEN, lambda _event: opened.append(True))])
    elapsed = time.monotonic() - start
    try:
        if not assoc.is_established:
            if assoc.is_rejected:
                raise PacsError(_rejected(pacs, calling_aet, assoc.acceptor.primitive))
            if not opened:
                raise PacsError(_unreachable(pacs, timeout_s, elapsed))
            if elapsed >= timeout_s:
                raise PacsError(f"{pacs} accepted the connection but did not answer the "
                                f"association request within {timeout_s:g} s; check that "
                                f"{pacs.endpoint} is the archive's DICOM port")
            raise PacsError(f"{pacs} closed the connection without accepting an association; "
                            f"check that {pacs.endpoint} is the archive's DICOM port (not its "
                            "web port) and see the archive's log")
        accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
        if VERIFICATION_SOP_CLASS in accepted:  # an archive need not offer C-ECHO
            echo = assoc.send_c_echo()
            if "Status" not in echo:
                raise PacsError(f"{pacs} did not answer C-ECHO within {timeout_s:g} s "
                                "(or aborted); see the archive's log")
            if echo.Status != 0x0000:
                raise PacsError(f"{pacs} answered C-ECHO with status 0x{echo.Status:04X}; "
                                "see the archive's log")
        if sop_class not in accepted:
            raise PacsError(f"{pacs} does not accept {_sop_class_name(sop_class)} in "
                            f"{_sop_class_name(syntax)}; configure the archive to accept this "
                            "storage class and transfer syntax")
        status = assoc.send_c_store(ds)
        if "Status" not in status:
            raise PacsError(f"{pacs} did not answer C-STORE within {timeout_s:g} s (or "
                            "aborted); the file may not be stored: see the archive's log")
    finally:
        if assoc.is_established:
            assoc.release()
    code = int(status.Status)
    category = code_to_category(code)
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(code, ("", "unknown status code"))[1]
    return StoreResult(pacs, sop_class, instance, syntax, code, category,
                       meaning, str(status.get("ErrorComment", "")))


def _err(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def cmd_store(args: argparse.Namespace) -> int:
    """Send ``args.file`` to ``args.pacs``; exit 2 for argument mistakes, 1 when the archive
    refuses it or cannot be reached."""
    try:
        pacs = PacsAddress.parse(args.pacs)
    except PacsAddressError as exc:
        _err(f"argument --pacs: {exc}")
        return 2
    try:
        calling_aet = validate_aet(args.aet, "calling AE title")
    except PacsAddressError as exc:
        _err(f"argument --aet: {exc}")
        return 2
    try:
        import pydicom  # noqa: F401
        import pynetdicom  # noqa: F401
    except ImportError as exc:
        _err(f"sending to a PACS needs {exc.name}: {_EXTRA_HINT}")
        return 2
    timeout_s = args.timeout or DEFAULT_TIMEOUT_S
    try:
        result = store(args.file, pacs, calling_aet=calling_aet, timeout_s=timeout_s)
    except DicomFileError as exc:
        _err(str(exc))
        return 2
    except PacsError as exc:
        _err(str(exc))
        return 1
    if result.category == "Success":
        print(result.describe())
        return 0
    if result.ok:
        print(f"warning: {result.describe()}", file=sys.stderr)
        return 0
    _err(result.describe())
    return 1
