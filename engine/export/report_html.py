"""The HTML of the run report: the page (inline style, no external resource), its sections and tables, and the
plotly charts with plotly.js embedded once. Every text passed in is escaped here."""
from __future__ import annotations

from html import escape
from typing import Any, Iterable, Sequence

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 24px; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.6em; margin: 0 0 16px; }
section { background: #fff; border: 1px solid #e1e5eb; border-radius: 8px; padding: 16px 20px; margin: 0 0 18px; }
h2 { font-size: 1.15em; margin: 0 0 12px; color: #1f4e9c; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid #eef0f3; }
th { background: #f3f5f8; font-weight: 600; }
table.samples td { white-space: pre-wrap; width: 33%; }
p.verdict { margin-top: 14px; }
.chart { margin: 8px 0; }
"""


def page(title: str, lang: str, body: str) -> str:
    """A whole HTML document: `title` as its title and heading, `body` (already HTML) under it."""
    return (f'<!DOCTYPE html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def section(title: str, body: str) -> str:
    """One titled section (`body` already HTML)."""
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>\n"


def table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, css: str = "") -> str:
    """A table of escaped cells, with a header row when given."""
    head = "<tr>" + "".join(f"<th>{escape(str(cell))}</th>" for cell in header) + "</tr>" if header else ""
    lines = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    css_class = f' class="{escape(css)}"' if css else ""
    return f"<table{css_class}>{head}{lines}</table>\n"


def charts_html(figures: list, prefix: str, first: bool = True) -> str:
    """The plotly figures as HTML, in divs named `<prefix>-<n>` (the same report twice is the same file): plotly.js
    itself inline in the first when `first` (once per page), never fetched from the network."""
    import plotly.io as pio

    parts = []
    for index, figure in enumerate(figures):
        embedded = first and index == 0
        chart = pio.to_html(figure, include_plotlyjs=embedded, full_html=False, div_id=f"{prefix}-{index}",
                            config={"displaylogo": False})
        parts.append(f'<div class="chart">{chart}</div>')
    return "\n".join(parts)
