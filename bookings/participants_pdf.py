"""A session's participant list as PDF (A4 landscape, Japanese font embedded), drawn with
matplotlib (Figure, not pyplot: no global state). The font comes from the application (the
monthly report's IPAex Gothic), so this feature does not look for fonts itself."""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib import rc_context
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.clock import CITY_TZ

from .service import Participants

PAGE = (11.69, 8.27)  # A4 landscape, inches
ROWS_PER_PAGE = 24
COLUMNS = (("申込番号", 1.3), ("状態", 0.9), ("人数", 0.5), ("氏名", 2.0), ("ふりがな", 2.0),
           ("電話番号", 1.4), ("受付", 0.6), ("連絡事項", 2.3))
STATUS_JA = {"confirmed": "確定", "waiting": "キャンセル待ち", "applied": "抽選申込",
             "lost": "落選", "cancelled": "取消"}
CHANNEL_JA = {"web": "web", "desk": "電話", "ivr": "自動"}
Font = Callable[[], str]  # the family name of a registered Japanese font


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def render(listing: Participants, font: Font) -> bytes:
    s, ev = listing.session, listing.event
    when = s.starts_at.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    title = f"参加者名簿  {ev.title_ja}  {when}  {s.venue_ja}  定員{s.capacity} 確定{s.taken}"
    out = io.BytesIO()
    rows = listing.rows or []
    pages = [rows[i:i + ROWS_PER_PAGE] for i in range(0, len(rows), ROWS_PER_PAGE)] or [[]]
    with rc_context({"font.family": [font(), "DejaVu Sans"], "pdf.fonttype": 42}), \
            PdfPages(out) as pdf:
        for n, chunk in enumerate(pages, start=1):
            fig = Figure(figsize=PAGE)
            # parse_math off: a "$" in a name is text, not a formula
            fig.text(0.04, 0.95, title, fontsize=12, va="top", parse_math=False)
            fig.text(0.96, 0.03, f"{n}/{len(pages)}", fontsize=8, ha="right")
            y = 0.88
            x = 0.04
            for head, width in COLUMNS:
                fig.text(x, y, head, fontsize=9, weight="bold", va="top")
                x += width / PAGE[0]
            for b in chunk:
                y -= 0.034
                cells = (b.number, STATUS_JA.get(b.status, b.status), str(b.party),
                         _cut(b.name, 16), _cut(b.furigana, 16), b.phone,
                         CHANNEL_JA.get(b.channel, b.channel),
                         _cut(b.note.replace("\n", " "), 18))
                x = 0.04
                for (_, width), value in zip(COLUMNS, cells, strict=True):
                    fig.text(x, y, value, fontsize=9, va="top", parse_math=False)
                    x += width / PAGE[0]
            pdf.savefig(fig)
    return out.getvalue()
