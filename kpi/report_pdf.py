"""The monthly report as a PDF (matplotlib PdfPages): A4 text pages for the summary, tables,
proposals and notes, and one page per chart. Call within rc_context(report_font.report_rc())
so that the text is set in IPAex Gothic and the font is embedded."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

from .report_content import Content, Table

A4 = (8.27, 11.69)  # inches, portrait
MARGIN_X, MARGIN_Y = 0.6, 0.7
WIDTH = A4[0] - 2 * MARGIN_X
BODY, SMALL, TABLE_PT = 9.5, 8.0, 7.0
NO_LINE_START = set("、。,.)」』%:;!?・〜")  # kinsoku: never the first character of a line
NO_LINE_END = set("(「『")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _tokens(text: str) -> list[str]:
    """Latin words stay whole (a hyphen may end a line); every wide character may start a
    line, except the punctuation kinsoku keeps on the line before."""
    out: list[str] = []
    for ch in text:
        if out and (ch in NO_LINE_START or out[-1][-1] in NO_LINE_END):
            out[-1] += ch
        elif (out and ch != " " and not _wide(ch) and out[-1][-1] not in " -"
              and not _wide(out[-1][-1])):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def width_pt(text: str, size_pt: float) -> float:
    """The width of one line as the PDF will set it (fonts from the current rcParams)."""
    w, _, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=size_pt),
                                                         ismath=False)
    return w


def wrap(text: str, size_pt: float, width_in: float) -> list[str]:
    limit = width_in * 72
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for tok in _tokens(paragraph):
            if line and width_pt((line + tok).rstrip(), size_pt) > limit:
                lines.append(line.rstrip())
                line = "" if tok == " " else tok
            else:
                line += tok
        lines.append(line.rstrip())
    return lines


class TextPages:
    """A4 pages filled from the top: headings, paragraphs, lists and tables."""

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf = pdf
        self.fig: Figure | None = None
        self.y = 0.0  # inches from the page's bottom

    def _page(self) -> Figure:
        if self.fig is None:
            self.fig = plt.figure(figsize=A4)
            self.y = A4[1] - MARGIN_Y
        return self.fig

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)  # type: ignore[no-untyped-call]
            plt.close(self.fig)
            self.fig = None

    def _room(self, height: float) -> Figure:
        fig = self._page()
        if self.y - height < MARGIN_Y:
            self.flush()
            fig = self._page()
        return fig

    def text(self, text: str, size: float = BODY, indent: float = 0.0, lead: str = "",
             before: float = 0.0, color: str = "black") -> None:
        lines = wrap(text, size, WIDTH - indent)
        step = size * 1.55 / 72
        for i, line in enumerate(lines):
            fig = self._room(step + (before if i == 0 else 0))
            if i == 0:
                self.y -= before
                if lead:
                    fig.text((MARGIN_X + indent - 0.22) / A4[0], self.y / A4[1], lead,
                             fontsize=size, va="top")
            fig.text((MARGIN_X + indent) / A4[0], self.y / A4[1], line, fontsize=size,
                     va="top", color=color)
            self.y -= step

    def heading(self, text: str, size: float = 13.0) -> None:
        self._room(0.9)  # keep a heading with what follows it
        self.text(text, size, before=0.12)
        self.y -= 0.04

    def table(self, table: Table, first_col: float = 1.3) -> None:
        cols = len(table.header)
        widths = [first_col] + [(WIDTH - first_col) / (cols - 1)] * (cols - 1)
        header = ["\n".join(wrap(h, TABLE_PT, w - 0.08)) for h, w in
                  zip(table.header, widths, strict=True)]
        head_h = max(h.count("\n") + 1 for h in header) * TABLE_PT * 1.4 / 72 + 0.06
        row_h = TABLE_PT * 1.9 / 72
        rows = list(enumerate(table.rows))
        while rows:
            fig = self._room(head_h + 2 * row_h)
            fit = max(1, int((self.y - MARGIN_Y - head_h) / row_h))
            chunk, rows = rows[:fit], rows[fit:]
            height = head_h + row_h * len(chunk)
            ax = fig.add_axes((MARGIN_X / A4[0], (self.y - height) / A4[1], WIDTH / A4[0],
                               height / A4[1]))
            ax.axis("off")
            tab = ax.table(cellText=[row for _, row in chunk], colLabels=header,
                           colWidths=[w / WIDTH for w in widths], loc="upper left",
                           cellLoc="right")
            tab.auto_set_font_size(False)
            tab.set_fontsize(TABLE_PT)
            for (r, c), cell in tab.get_celld().items():
                cell.set_height((head_h if r == 0 else row_h) / height)
                cell.set_linewidth(0.4)
                if r == 0:
                    cell.get_text().set_horizontalalignment("center")
                    cell.set_facecolor("#eeeeee")
                    continue
                if c == 0:
                    cell.get_text().set_horizontalalignment("left")
                if (chunk[r - 1][0], c) in table.missed:
                    cell.get_text().set_color("#b00000")
            self.y -= height + 0.12


def _satisfaction(pages: TextPages, c: Content) -> None:
    s, h = c.satisfaction, c.headings
    if s is None:
        return
    pages.heading(h["satisfaction"])
    for line in s.lines:
        pages.text(line)
    for key, table in (("sat_answers", s.answers), ("sat_operators", s.operators)):
        if table is not None:
            pages.text(h[key], before=0.06)
            pages.table(table)
    for key, items in (("sat_low", s.low), ("sat_comments", s.comments)):
        pages.text(h[key], before=0.06)
        for item in items:
            pages.text(item, SMALL, indent=0.25, lead=c.bullet, before=0.02)


def _bookings(pages: TextPages, c: Content) -> None:
    if c.bookings is None:
        return
    pages.heading(c.headings["bookings"])
    if c.bookings.rows:
        pages.table(c.bookings)
    else:
        pages.text(c.no_bookings)


def render_pdf(c: Content, path: Path) -> None:
    h = c.headings
    with PdfPages(path) as pdf:
        pages = TextPages(pdf)
        pages.text(c.title, 18.0)
        for line in c.meta:
            pages.text(line, SMALL)
        pages.heading(h["summary"])
        for line in c.summary:
            pages.text(line)
        pages.heading(h["levels"])
        pages.table(c.levels)
        pages.text(c.legend, SMALL)
        _satisfaction(pages, c)
        _bookings(pages, c)
        pages.heading(h["proposals"])
        for p in c.proposals:
            pages.text(p, indent=0.25, lead=c.bullet, before=0.03)
        pages.heading(h["charts"])
        for chart in c.charts:
            if chart.figure is None:
                pages.text(f"{chart.title}: {chart.empty}", indent=0.25, lead=c.bullet)
        if any(chart.figure is not None for chart in c.charts):
            pages.text(c.charts_follow, SMALL)
        pages.flush()
        for chart in c.charts:
            if chart.figure is not None:
                pdf.savefig(chart.figure)
        pages.heading(h["by_day"])
        if c.by_day is not None:
            pages.table(c.by_day)
        else:
            pages.text(c.no_days)
        pages.heading(h["notes"])
        for i, note in enumerate(c.notes, 1):
            pages.text(note, SMALL, indent=0.3, lead=f"{i}.", before=0.02)
        pages.flush()
        info = pdf.infodict()
        info["Title"] = c.doc_title
        info["Author"] = "madoguchi"
