"""FAX files: the external tools (tiff2pdf, Ghostscript, pdfinfo) run with fixed argument
lists and never a shell, checksums, private modes, overwriting before deletion. Names in
the archive come from our ids only."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

from core.clock import CITY_TZ
from core.files import overwrite_and_unlink as overwrite_and_unlink
from core.files import walk_files as walk_files

TOOL_TIMEOUT_S = 120.0
PDF_MAGIC = b"%PDF-"
_PAGES = re.compile(rb"^Pages:\s+([0-9]{1,6})\s*$", re.MULTILINE)
_OUR_ID = re.compile(r"[0-9a-f]{32}")


class FaxFileError(Exception):
    pass


def private_dir(path: Path) -> Path:
    """The folder and every one made on the way to it: 0700, whatever the umask."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return path


def archive_name(kind: str, fax_id: str, at: datetime, suffix: str) -> str:
    """received/2026/12/02/<id>.pdf: the city's day, our id; nothing from the caller."""
    if not _OUR_ID.fullmatch(fax_id) or kind not in ("received", "sent") or suffix not in (
            ".pdf", ".tif"):
        raise FaxFileError(f"refused archive name {kind}/{fax_id}{suffix}")
    day = at.astimezone(CITY_TZ)
    return f"{kind}/{day:%Y/%m/%d}/{fax_id}{suffix}"


def safe_path(root: Path, relative: str) -> Path:
    """A stored relative name under root; anything escaping root is refused."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise FaxFileError(f"path {relative!r} escapes the FAX archive")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaxFileError(f"{argv[0]}: {exc}") from exc


def tiff_to_pdf(tiff: Path, pdf: Path) -> None:
    """One PDF page per TIFF page, each sized by the TIFF's own X/Y resolution (standard
    204x98 and fine 204x196 keep the page's aspect ratio). Written 0600."""
    tmp = pdf.with_name(f".{pdf.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    done = _run(["tiff2pdf", "-o", str(tmp), "--", str(tiff)])
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise FaxFileError("tiff2pdf: " + done.stderr.decode(errors="replace")[-200:].strip())
    os.chmod(tmp, 0o600)
    _fsync(tmp)
    os.replace(tmp, pdf)


def pdf_to_tiff(pdf: Path, tiff: Path) -> None:
    """A G3 FAX TIFF at fine resolution (204x196 dpi), A4, for SendFAX."""
    tmp = tiff.with_name(f".{tiff.name}.tmp")
    done = _run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg3",
                 "-r204x196", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage",
                 f"-sOutputFile={tmp}", "--", str(pdf)])
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise FaxFileError("gs: " + done.stderr.decode(errors="replace")[-200:].strip())
    os.chmod(tmp, 0o600)
    os.replace(tmp, tiff)


def pdf_pages(pdf: Path) -> int:
    """The page count pdfinfo reads; FaxFileError when it cannot read the file."""
    done = _run(["pdfinfo", "--", str(pdf)])
    found = _PAGES.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise FaxFileError("pdfinfo: " + done.stderr.decode(errors="replace")[-200:].strip())
    return int(found.group(1))


def write_private(dest: Path, data: bytes) -> None:
    """A new file, 0600 from its first byte, fsynced, renamed into place."""
    private_dir(dest.parent)
    tmp = dest.with_name(f".{dest.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


