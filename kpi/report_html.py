"""The monthly report as one self-contained HTML file (charts embedded as PNG)."""

from __future__ import annotations

import html

from .report_content import Content, Table


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h).replace(chr(10), '<br>')}</th>"
                   for h in table.header)
    rows = []
    for r, row in enumerate(table.rows):
        cells = "".join(
            f'<td class="miss">{html.escape(v)}</td>' if (r, c) in table.missed
            else f"<td>{html.escape(v)}</td>" for c, v in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _satisfaction(c: Content) -> str:
    s, h, e = c.satisfaction, c.headings, html.escape
    if s is None:
        return ""
    out = [f"<h2>{e(h['satisfaction'])}</h2>"]
    if s.lines:
        out.append(f"<p>{'<br>'.join(e(x) for x in s.lines)}</p>")
    for key, table in (("sat_answers", s.answers), ("sat_operators", s.operators)):
        if table is not None:
            out += [f"<h3>{e(h[key])}</h3>", _table(table)]
    out += [f"<h3>{e(h['sat_low'])}</h3>",
            f"<ul>{''.join(f'<li>{e(x)}</li>' for x in s.low)}</ul>",
            f"<h3>{e(h['sat_comments'])}</h3>",
            f"<ul>{''.join(f'<li>{e(x)}</li>' for x in s.comments)}</ul>"]
    return "\n".join(out)


def _bookings(c: Content) -> str:
    if c.bookings is None:
        return ""
    e = html.escape
    body = _table(c.bookings) if c.bookings.rows else f"<p>{e(c.no_bookings)}</p>"
    return f"<h2>{e(c.headings['bookings'])}</h2>\n{body}"


def render_html(c: Content) -> str:
    e = html.escape
    h = c.headings
    charts = []
    for chart in c.charts:
        charts.append(f"<h3>{e(chart.title)}</h3>")
        charts.append(f'<img alt="{e(chart.title)}" src="data:image/png;base64,{chart.png()}">'
                      if chart.figure is not None else f'<p class="empty">{e(chart.empty)}</p>')
    by_day = _table(c.by_day) if c.by_day is not None else f"<p>{e(c.no_days)}</p>"
    return f"""<!doctype html>
<html lang="{c.lang}"><head><meta charset="utf-8">
<title>{e(c.doc_title)}</title>
<style>body{{font-family:"IPAexGothic","IPAexゴシック",sans-serif;margin:2em}}
table{{border-collapse:collapse}} td,th{{border:1px solid #999;padding:2px 8px;
text-align:right}} td:first-child{{text-align:left}} .miss{{color:#b00;font-weight:bold}}
.empty{{color:#555}} img{{max-width:100%}}</style></head><body>
<h1>{e(c.title)}</h1>
<p>{"<br>".join(e(x) for x in c.meta)}</p>
<h2>{e(h["summary"])}</h2>
<p>{"<br>".join(e(x) for x in c.summary)}</p>
<h2>{e(h["levels"])}</h2>
{_table(c.levels)}
<p>{e(c.legend)}</p>
{_satisfaction(c)}
{_bookings(c)}
<h2>{e(h["proposals"])}</h2>
<ul>{"".join(f"<li>{e(p)}</li>" for p in c.proposals)}</ul>
<h2>{e(h["charts"])}</h2>
{chr(10).join(charts)}
<h2>{e(h["by_day"])}</h2>
{by_day}
<h2>{e(h["notes"])}</h2>
<ol>{"".join(f"<li>{e(n)}</li>" for n in c.notes)}</ol>
</body></html>
"""
