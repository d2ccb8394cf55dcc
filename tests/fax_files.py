"""FAX test material: G3 TIFFs at standard or fine resolution, meta files as the dialplan
writes them, small PDFs, and the FAX service on a test database."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw

from core.fax import FaxSettings
from fax.service import FaxService
from fax.settings import FaxConfig, FaxPaths
from store.db import Database

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a reception's start
# A4 at 204 dpi across; standard 98 dpi and fine 196 dpi down
WIDTH, STANDARD, FINE = 1728, (204, 98), (204, 196)


def write_tiff(path: Path, dpi: tuple[int, int] = FINE, pages: int = 1) -> None:
    height = round(11.69 * dpi[1])
    images = []
    for n in range(pages):
        im = Image.new("1", (WIDTH, height), 1)
        ImageDraw.Draw(im).rectangle((100, 100 + 50 * n, 600, 400), fill=0)
        images.append(im)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, compression="group3", dpi=dpi, save_all=True,
                   append_images=images[1:])


def write_meta(path: Path, **values: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="ascii")


def good_meta(source: str, **extra: str) -> dict[str, str]:
    start = int(AT.timestamp())
    return {"id": source, "did": "4000", "callerid": "0312345678", "started": str(start),
            "ended": str(start + 60), "status": "SUCCESS", "statusstr": "OK", "error": "",
            "pages": "1", "resolution": "8031x7700", "rate": "14400",
            "remotestationid": "+81 3 1234 5678", **extra}


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def pdf_bytes(pages: int = 1) -> bytes:
    buf = io.BytesIO()
    images = [Image.new("RGB", (595, 842), "white") for _ in range(pages)]
    images[0].save(buf, "PDF", resolution=72, save_all=True, append_images=images[1:])
    return buf.getvalue()


def fax_config(root: Path, **settings: object) -> FaxConfig:
    values: dict[str, object] = {"number": "03-5555-0100", "header": "Test",
                                 "dids": ("4000",), **settings}
    fax = FaxSettings(**values)  # type: ignore[arg-type]
    return FaxConfig(fax, FaxPaths(root / "spool" / "in", root / "spool" / "out",
                                   root / "fax-archive", root / "reports"))


async def fax_service(db_url: str, root: Path, clock: datetime = AT,
                      **settings: object) -> FaxService:
    db = Database(db_url)
    await db.create_schema()
    return FaxService(db, fax_config(root, **settings), clock=lambda: clock)
