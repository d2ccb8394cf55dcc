"""An answer text (an FAQ's answer, or what the operator writes) as an A4 PDF to FAX: IPAex
Gothic (fonts-ipaexfont-gothic) embedded as TrueType, lines wrapped by display width."""

from __future__ import annotations

import functools
import io
import unicodedata
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

FONT_FILE = "ipaexg.ttf"
FONT_PATHS = (Path("/usr/share/fonts/opentype/ipaexfont-gothic") / FONT_FILE,
              Path("/usr/share/fonts/truetype/ipaexfont-gothic") / FONT_FILE)
A4_IN = (8.27, 11.69)
MARGIN_IN = 0.8
FONT_PT = 11.0
LINE_PT = FONT_PT * 1.5
COLUMNS = 80  # display columns per line: a full-width character takes two
MAX_TEXT = 8000
MAX_PAGES = 20


class TextPdfError(Exception):
    pass


@functools.cache
def _font() -> font_manager.FontProperties:
    path = next((p for p in FONT_PATHS if p.is_file()), None)
    if path is None:
        raise TextPdfError(f"the IPAex Gothic font ({FONT_FILE}) is not installed "
                           "(Debian package fonts-ipaexfont-gothic)")
    return font_manager.FontProperties(fname=str(path), size=FONT_PT)


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap(text: str, columns: int = COLUMNS) -> list[str]:
    """Lines no wider than `columns`, breaking anywhere (Japanese has no spaces)."""
    out: list[str] = []
    for para in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line, used = "", 0
        for ch in para.replace("\t", "    "):
            if not ch.isprintable():
                continue
            w = _width(ch)
            if used + w > columns:
                out.append(line)
                line, used = "", 0
            line += ch
            used += w
        out.append(line)
    return out


def text_pdf(text: str, heading: str = "") -> bytes:
    """The text on as many A4 pages as it needs (at most MAX_PAGES)."""
    if not text.strip() or len(text) > MAX_TEXT:
        raise TextPdfError(f"the text must be 1-{MAX_TEXT} characters")
    font = _font()
    lines = ([*wrap(heading), ""] if heading else []) + wrap(text)
    per_page = int((A4_IN[1] - 2 * MARGIN_IN) * 72 // LINE_PT)
    pages = [lines[i:i + per_page] for i in range(0, len(lines), per_page)]
    if len(pages) > MAX_PAGES:
        raise TextPdfError(f"the text is over {MAX_PAGES} pages")
    buf = io.BytesIO()
    # TrueType outlines embedded (Type 42), not Type 3 bitmaps
    with rc_context({"pdf.fonttype": 42}), PdfPages(buf, metadata={"Creator": "madoguchi"}) as pdf:
        for page in pages:
            fig = Figure(figsize=A4_IN)
            for n, line in enumerate(page):
                y = 1 - (MARGIN_IN * 72 + (n + 1) * LINE_PT) / (A4_IN[1] * 72)
                fig.text(MARGIN_IN / A4_IN[0], y, line, fontproperties=font)
            pdf.savefig(fig)
    return buf.getvalue()
