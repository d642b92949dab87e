"""Rendering the report page: plain HTML with inline CSS, images and audio from the assets folder."""

from __future__ import annotations

import html
from typing import Iterable

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #c9cfdb; font-size: 14px; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 32px 48px; }
section { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
h2 { font-size: 18px; margin: 0 0 10px 0; }
h3 { font-size: 15px; margin: 16px 0 8px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e6e8ee; padding: 4px 10px; text-align: right; }
th { background: #f0f2f6; }
td.text, th.text { text-align: left; max-width: 420px; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.note { color: #5b6477; font-size: 13px; }
.transcript { font-size: 16px; background: #f0f4ff; padding: 8px 12px; border-radius: 6px; }
.na { color: #8a6d00; background: #fff8e1; padding: 6px 10px; border-radius: 6px; font-size: 13px; }
nav a { margin-right: 14px; color: #2956b2; text-decoration: none; font-size: 14px; }
"""


def esc(value) -> str:
    """HTML-escape anything."""
    return html.escape(str(value))


def fmt(value, digits: int = 4) -> str:
    """Numbers with ``digits`` decimals, None/NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.{digits}f}"
    return esc(value)


def table(columns: list[tuple[str, str]], rows: Iterable[dict], text_columns: Iterable[str] = ()) -> str:
    """An HTML table: ``columns`` are (key, header) pairs."""
    text_columns = set(text_columns)
    head = "".join(f'<th class="{"text" if k in text_columns else ""}">{esc(h)}</th>' for k, h in columns)
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"text" if k in text_columns else ""}">{fmt(row.get(k))}</td>' for k, _ in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(src: str, alt: str) -> str:
    """An <img> from the assets folder."""
    return f'<img src="{esc(src)}" alt="{esc(alt)}">'


def page(title: str, subtitle: str, nav: list[tuple[str, str]], sections: list[str]) -> str:
    """The whole document."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main><nav>{links}</nav>"
            + "".join(sections) + "</main></body></html>")


def section(anchor: str, heading: str, body: str) -> str:
    """One titled card."""
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{body}</section>'
