"""The report's font: IPAex Gothic (Debian fonts-ipaexfont-gothic), registered with matplotlib
and embedded in the PDF as TrueType (Type 42), so that Japanese renders on any reader without
the font installed. Service names and topics are Japanese in either language, so both need it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.typing import RcKeyType

from .errors import ReportFontMissing

FONT_FILE = "ipaexg.ttf"
FONT_PATHS = (Path("/usr/share/fonts/opentype/ipaexfont-gothic") / FONT_FILE,
              Path("/usr/share/fonts/truetype/ipaexfont-gothic") / FONT_FILE)
FALLBACK = "DejaVu Sans"  # matplotlib's own: the few symbols IPAex lacks


def _find() -> Path | None:
    for path in FONT_PATHS:
        if path.is_file():
            return path
    # another layout (a distribution's own folders): ask fontconfig's list
    return next((Path(p) for p in font_manager.findSystemFonts()
                 if Path(p).name == FONT_FILE), None)


@functools.cache
def report_font() -> str:
    """The family name of IPAex Gothic, registered with matplotlib (its cache may predate
    the font's installation). Raises ReportFontMissing when it is not installed."""
    path = _find()
    if path is None:
        raise ReportFontMissing(
            f"the report needs the IPAex Gothic font ({FONT_FILE}), looked for in "
            f"{', '.join(str(p.parent) for p in FONT_PATHS)}: install the Debian package "
            "fonts-ipaexfont-gothic (make deps)")
    font_manager.fontManager.addfont(str(path))
    return str(font_manager.FontProperties(fname=str(path)).get_name())


def report_rc() -> dict[RcKeyType, Any]:
    """matplotlib settings for drawing and saving the report's figures."""
    return {"font.family": [report_font(), FALLBACK],
            "pdf.fonttype": 42,  # embed TrueType outlines, not Type 3 bitmaps
            "axes.unicode_minus": False}
