"""Monthly report (§4(3), 仕様書 9): KPIs against the targets, charts, and improvement
proposals derived from the data, written as one self-contained HTML file and a PDF, in
Japanese (default) or English.

The figures (report_data) are gathered once in no language; report_content words them,
report_charts draws them, report_html and report_pdf write them. The text is set in IPAex
Gothic, embedded in the PDF (report_font); without the font the report refuses to start.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path

import matplotlib

from .errors import BadQuery
from .report_charts import close
from .report_content import content
from .report_data import MonthData, month_data
from .report_font import report_rc
from .report_html import render_html
from .report_pdf import render_pdf
from .report_text import LANGS, Lang
from .service import KpiService

__all__ = ["MonthData", "month_data", "write_files", "write_report"]

_SERVICE = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # a service id as the config allows it


def write_files(data: MonthData, out: Path, stem: str, lang: str = "ja") -> tuple[Path, Path]:
    """Draw and write <stem>.html and <stem>.pdf into `out` (blocking)."""
    t = Lang(lang)
    with matplotlib.rc_context(report_rc()):  # refuses before any file without the font
        c = content(data, t)
        try:
            out.mkdir(parents=True, exist_ok=True)
            html_path, pdf_path = out / f"{stem}.html", out / f"{stem}.pdf"
            html_path.write_text(render_html(c), encoding="utf-8")
            render_pdf(c, pdf_path)
        finally:
            close(c.charts)
    return html_path, pdf_path


async def write_report(service: KpiService, month: str, out: Path, svc: str | None = None,
                       *, lang: str = "ja", names: Mapping[str, str] | None = None
                       ) -> tuple[Path, Path]:
    """Write report-<month>[-<service>][-en].html and .pdf into `out`. `names`: service id →
    name, as the config has them, for the report to show instead of ids."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", month):  # \d also takes "２０２４"
        raise BadQuery(f"month must be YYYY-MM, not {month!r}")
    if lang not in LANGS:
        raise BadQuery(f"language must be one of {', '.join(LANGS)}, not {lang!r}")
    if svc is not None and not _SERVICE.fullmatch(svc):  # it becomes part of a file name
        raise BadQuery(f"{svc!r} is not a service id")
    data = await month_data(service, month, svc, names)
    stem = f"report-{month}" + (f"-{svc}" if svc else "") + ("" if lang == "ja" else f"-{lang}")
    # drawing and file output block: keep them off the event loop
    return await asyncio.to_thread(write_files, data, out, stem, lang)
