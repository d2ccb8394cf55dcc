"""FAX against real Asterisk, no fakes on the FAX path: a second Asterisk (harness/fax_peer.py)
is the citizen's FAX machine. It sends Ghostscript-made multi-page G3 TIFFs through the
centre's trunk to the FAX DID, over G.711 and over T.38, at standard and fine resolution;
the centre receives them with no help from the engine, and the engine indexes them as PDFs
the API serves. The centre sends back to the peer from the console API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.fax import IN_DIR, META_SUFFIX
from harness.fax_pages import difference, make_document, page_aspect, page_image, pdf_pages
from harness.fax_peer import NUMBER, CentreTrunk, FaxPeer, PeerPorts

from .conftest import BASE, CITY_PBX_PORT, SIP_PORT, Stack, _unavailable

pytestmark = pytest.mark.asterisk

ROOTFS = Path("/var/cache/madoguchi/asterisk-sid")
FAX_DID = "4000"  # config/madoguchi.yaml's fax: dids
CENTRE_NUMBER = "03-5555-0100"  # and its number
PAGES = 3
# mean absolute grey difference (0..1) between a received page and its original, both
# rendered by pdftoppm and scaled alike. Measured: ~0.04 for the same page (the sender's
# header line, standard resolution's coarser lines), ~0.11 for another page
SAME_PAGE = 0.07
A4_ASPECT = 297 / 215  # the test pages are 215 x 297 mm (1728 dots at 204 dpi)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaxPeer]:
    for tool in ("gs", "pdftoppm", "pdfinfo", "tiffinfo"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (ghostscript, poppler-utils, libtiff-tools)")
    # the peer answers on the city PBX trunk's port: the centre dials outside numbers there
    fax_peer = FaxPeer(tmp_path_factory.mktemp("fax-peer"),
                       PeerPorts(CITY_PBX_PORT, BASE + 39, (BASE + 5000, BASE + 5199),
                                 (BASE + 5500, BASE + 5599)),
                       CentreTrunk(SIP_PORT, FAX_DID), ROOTFS)
    try:
        fax_peer.start()
    except RuntimeError as exc:
        _unavailable(str(exc))
    try:
        yield fax_peer
    finally:
        fax_peer.stop()
        logs = Path(__file__).resolve().parents[2] / "artifacts" / "e2e-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("asterisk.out", "log/messages.log"):
            src = fax_peer.folder / name
            if src.exists():
                shutil.copyfile(src, logs / f"fax-peer-{src.name}")


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("fax-docs")
    return {res: make_document(folder / res, PAGES, res) for res in ("standard", "fine")}


def caller_number() -> str:
    """A caller id of this test alone: the API finds its FAX by it."""
    return "06" + str(uuid.uuid4().int)[:8]


def wait_indexed(stack: Stack, caller: str, timeout: float = 75) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = stack.json(f"/api/fax?number={caller}")
        assert isinstance(data, dict)
        items = [i for i in data["items"] if i["caller"] == caller]
        if items:
            assert len(items) == 1, items
            return dict(items[0])
        time.sleep(1)
    raise AssertionError(f"no FAX from {caller} in the API after {timeout:.0f} s")


def fetch_pdf(stack: Stack, item: dict[str, object], dest: Path) -> Path:
    status, headers, body = stack.get(str(item["pdf_url"]))
    assert status == 200, (status, body[:200])
    assert headers["Content-Type"] == "application/pdf" and body.startswith(b"%PDF-")
    dest.write_bytes(body)
    return dest


def assert_pages_match(original: Path, received: Path, pages: int) -> None:
    """Each received page looks like its own original page, and less like any other; the
    page keeps A4's proportions (a standard-resolution FAX has half the lines of fine: a
    viewer that ignores the TIFF's vertical resolution shows it squashed)."""
    originals = [page_image(original, n) for n in range(1, PAGES + 1)]
    for n in range(1, pages + 1):
        aspect = page_aspect(received, n)
        assert abs(aspect - A4_ASPECT) < 0.05, f"page {n}: height/width {aspect:.3f}"
        got = page_image(received, n)
        diffs = [difference(got, o) for o in originals]
        assert diffs[n - 1] < SAME_PAGE, f"page {n} differs from its original: {diffs}"
        others = diffs[:n - 1] + diffs[n:]
        assert diffs[n - 1] < 0.6 * min(others), f"page {n} looks like another page: {diffs}"


@pytest.mark.parametrize("t38", [False, True], ids=["g711", "t38"])
@pytest.mark.parametrize("resolution", ["standard", "fine"])
def test_a_fax_is_received_and_found_as_a_pdf(stack: Stack, peer: FaxPeer,
                                              documents: dict[str, tuple[Path, Path]],
                                              resolution: str, t38: bool,
                                              tmp_path: Path) -> None:
    pdf, tiff = documents[resolution]
    caller = caller_number()
    tag = uuid.uuid4().hex[:12]
    peer.send(tiff, t38=t38, tag=tag, caller=caller, station="+81 6 1234 5678")
    # T.38 when the citizen's machine takes it, else the audio fallback
    assert peer.session_types() == {"T.38" if t38 else "G.711"}
    sent = peer.wait_result("send", tag)
    assert (sent["Status"], sent["Pages"]) == ("SUCCESS", str(PAGES)), sent
    # what the citizen's machine saw as the centre's station id
    assert sent["RemoteStationId"] == CENTRE_NUMBER
    item = wait_indexed(stack, caller)
    assert (item["result"], item["pages"], item["did"]) == ("ok", PAGES, FAX_DID), item
    assert item["remote_station"] == "+81 6 1234 5678"
    assert item["resolution"] == resolution, item
    received = fetch_pdf(stack, item, tmp_path / "received.pdf")
    assert pdf_pages(received) == PAGES
    assert_pages_match(pdf, received, PAGES)


def test_a_fax_arriving_while_the_engine_is_down_is_indexed_when_it_starts(
        stack: Stack, peer: FaxPeer, documents: dict[str, tuple[Path, Path]]) -> None:
    _, tiff = documents["standard"]
    caller = caller_number()
    tag = uuid.uuid4().hex[:12]
    assert stack.stop_engine() == 0
    try:
        peer.send(tiff, t38=False, tag=tag, caller=caller)
        sent = peer.wait_result("send", tag)
        assert sent["Status"] == "SUCCESS", sent
        # Asterisk alone wrote it down
        spool = stack.state / "asterisk" / "fax" / IN_DIR
        metas = [m for m in spool.glob(f"*{META_SUFFIX}")
                 if f"callerid={caller}\n" in m.read_text(errors="replace")]
        assert len(metas) == 1, sorted(p.name for p in spool.iterdir())
        assert metas[0].with_suffix(".tif").stat().st_size > 0
    finally:
        stack.start_engine()
    item = wait_indexed(stack, caller)
    assert (item["result"], item["pages"]) == ("ok", PAGES), item


def _tiff_pages(path: Path) -> int:
    done = subprocess.run(["tiffinfo", str(path)], capture_output=True, text=True, timeout=10,
                          check=False)
    return done.stdout.count("TIFF Directory at offset")


def test_a_sender_hanging_up_mid_page_leaves_a_marked_partial_fax(
        stack: Stack, peer: FaxPeer, documents: dict[str, tuple[Path, Path]]) -> None:
    _, tiff = documents["fine"]
    caller = caller_number()
    tag = uuid.uuid4().hex[:12]
    spool = stack.state / "asterisk" / "fax" / IN_DIR
    before = set(spool.glob("*.tif"))
    channel = peer.send(tiff, t38=False, tag=tag, caller=caller)
    # hang up once the centre has the first page and is receiving the second
    deadline = time.monotonic() + 90
    while True:
        new = [p for p in spool.glob("*.tif") if p not in before]
        if new and _tiff_pages(new[0]) >= 1:
            break
        assert time.monotonic() < deadline, "the first page never arrived"
        time.sleep(0.3)
    time.sleep(2)
    peer.hangup(channel)
    sent = peer.wait_result("send", tag)
    assert sent["Status"] != "SUCCESS", sent
    item = wait_indexed(stack, caller)
    assert item["result"] == "partial", item
    assert 1 <= int(str(item["pages"])) < PAGES, item
    assert item["pdf_url"], item  # the pages that came are readable


def _multipart(fields: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, (filename, data, ctype) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                      if filename else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                 f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(stack: Stack, data: bytes, number: str) -> tuple[int, dict[str, object]]:
    body, ctype = _multipart({"number": ("", number.encode(), "text/plain"),
                              "file": ("doc.pdf", data, "application/pdf")})
    req = urllib.request.Request(stack.http + "/api/fax/send", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {stack.token}",
                                          "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, {"raw": raw[:200].decode(errors="replace")}


def sent_jobs(stack: Stack) -> list[dict[str, object]]:
    data = stack.json("/api/fax/sent?limit=100")
    assert isinstance(data, dict)
    return list(data["items"])


def test_a_fax_sent_from_the_console_reaches_the_citizen_with_our_number(
        stack: Stack, peer: FaxPeer, documents: dict[str, tuple[Path, Path]]) -> None:
    pdf, _ = documents["fine"]
    peer.ami.events.clear()
    status, job = upload(stack, pdf.read_bytes(), NUMBER)
    assert status == 202, job
    got = peer.wait_result("receive", timeout=240)
    assert (got["Status"], got["Pages"]) == ("SUCCESS", str(PAGES)), got
    # the citizen's machine shows the centre's FAX number as the sender
    assert got["RemoteStationId"] == CENTRE_NUMBER, got
    assert got["CallerId"] == CENTRE_NUMBER.replace("-", ""), got
    received = peer.received(got["File"])
    assert _tiff_pages(received) == PAGES
    deadline = time.monotonic() + 60
    while True:
        row = stack.json(f"/api/fax/sent/{job['id']}")
        assert isinstance(row, dict)
        if row["state"] == "ok":
            break
        assert row["state"] in ("queued", "sending"), row
        assert time.monotonic() < deadline, row
        time.sleep(1)
    assert row["pages_sent"] == PAGES and row["attempts"] == 1, row


@pytest.mark.parametrize("case", ["not-a-pdf", "oversized", "disallowed-number"])
def test_bad_input_is_refused_and_nothing_is_sent(
        stack: Stack, peer: FaxPeer, documents: dict[str, tuple[Path, Path]],
        case: str) -> None:
    pdf, _ = documents["standard"]
    before = len(sent_jobs(stack))
    peer.ami.events.clear()
    data, number = pdf.read_bytes(), NUMBER
    if case == "not-a-pdf":
        data = b"GIF89a" + b"\0" * 100
    elif case == "oversized":
        data = b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024)  # the limit is 10 MiB
    else:
        number = "0312345678"  # not an allowed outside prefix
    status, body = upload(stack, data, number)
    assert 400 <= status < 500, (status, body)
    assert len(sent_jobs(stack)) == before
    time.sleep(3)
    assert not [e for e in peer.ami.drain() if e.get("Event") == "Newchannel"
                or e.get("UserEvent") == "PeerFax"], "the peer was called"
