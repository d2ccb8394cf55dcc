"""Test documents for FAX: a multi-page PDF and the G3 TIFF a FAX machine would send of it
(Ghostscript), and page images to compare what came out the other end (pdftoppm).

Each page has different, large shapes (a page number in bars, a frame, a diagonal, a block
whose position depends on the page), so a page swapped, lost, squashed or stretched (standard
resolution has half the lines of fine) shows in the comparison.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# T.4 page width at 204 dpi is 1728 pixels (215 mm); A4 is 297 mm tall
WIDTH_PX = 1728
HEIGHT_MM = 297
RESOLUTIONS = {"standard": (204, 98), "fine": (204, 196)}
PAGE_PT = (WIDTH_PX / 204 * 72, HEIGHT_MM / 25.4 * 72)  # 609.9 x 841.9 points


def _postscript(pages: int) -> str:
    w, h = PAGE_PT
    out = ["%!PS-Adobe-3.0", f"<< /PageSize [{w:.1f} {h:.1f}] >> setpagedevice"]
    for n in range(1, pages + 1):
        out += [
            "0 setgray 6 setlinewidth",
            f"30 30 {w - 60:.1f} {h - 60:.1f} rectstroke",  # the frame
            f"30 30 moveto {w - 30:.1f} {h - 30:.1f} lineto stroke",  # a diagonal
            # the page number as n thick bars, top left
            *(f"{60 + 40 * i} {h - 260:.1f} 24 180 rectfill" for i in range(n)),
            # a block whose height on the page depends on the page number
            f"{w - 240:.1f} {h - 200 - 150 * n:.1f} 160 110 rectfill",
            "/Helvetica-Bold findfont 64 scalefont setfont",
            f"60 120 moveto (PAGE {n}) show",
            "showpage",
        ]
    return "\n".join(out) + "\n"


def make_document(folder: Path, pages: int, resolution: str) -> tuple[Path, Path]:
    """(PDF, G3 TIFF) of a `pages`-page document, the TIFF at `resolution` (standard|fine)."""
    x_dpi, y_dpi = RESOLUTIONS[resolution]
    folder.mkdir(parents=True, exist_ok=True)
    ps = folder / f"doc-{pages}p.ps"
    ps.write_text(_postscript(pages), encoding="ascii")
    pdf = folder / f"doc-{pages}p.pdf"
    tiff = folder / f"doc-{pages}p-{resolution}.tif"
    gs = ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER"]
    subprocess.run([*gs, "-sDEVICE=pdfwrite", f"-sOutputFile={pdf}", str(ps)], check=True,
                   capture_output=True, timeout=60)
    height = round(HEIGHT_MM / 25.4 * y_dpi)
    subprocess.run([*gs, "-sDEVICE=tiffg3", f"-r{x_dpi}x{y_dpi}", f"-g{WIDTH_PX}x{height}",
                    "-dFIXEDMEDIA", "-dPDFFitPage", f"-sOutputFile={tiff}", str(pdf)],
                   check=True, capture_output=True, timeout=60)
    return pdf, tiff


def pdf_pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def page_image(pdf: Path, page: int, size: tuple[int, int] = (300, 424)) -> NDArray[np.float64]:
    """Page `page` (1-based) rendered by pdftoppm at 50 dpi, in grey, scaled to `size`
    (A4's proportions), as values 0 (black) to 1 (white)."""
    prefix = pdf.with_name(f"{pdf.stem}-page{page}")
    subprocess.run(["pdftoppm", "-gray", "-r", "50", "-f", str(page), "-l", str(page),
                    "-singlefile", "-png", str(pdf), str(prefix)], check=True,
                   capture_output=True, timeout=60)
    with Image.open(prefix.with_suffix(".png")) as img:
        return np.asarray(img.convert("L").resize(size, Image.Resampling.BOX),
                          dtype=np.float64) / 255.0


def page_aspect(pdf: Path, page: int = 1) -> float:
    """Height over width of a page as the PDF shows it (A4: 1.414)."""
    out = subprocess.run(["pdfinfo", "-f", str(page), "-l", str(page), str(pdf)], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    line = next(x for x in out.splitlines() if x.startswith(f"Page {page:>4} size:")
                or x.startswith("Page size:"))
    parts = line.split(":", 1)[1].split()
    return float(parts[2]) / float(parts[0])


def difference(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean absolute pixel difference, 0 (same) to 1."""
    return float(np.abs(a - b).mean())
