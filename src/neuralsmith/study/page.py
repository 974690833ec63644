"""The HTML of a self-contained report: sections, sortable tables, figures that enlarge on click.

Everything is inline (styles, scripts, images as data URIs): the file opens with no network.
The page marks itself once loaded (``data-broken-images`` on ``<body>``) so a headless browser
can check that every image decoded.

Example:
    >>> print(html_table(["start", "error"], [["he", 3.5]]))
    <table class='sortable'><thead><tr><th>start</th><th>error</th></tr></thead><tbody><tr><td>he</td><td data-sort='3.5'>3.5</td></tr></tbody></table>
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any, Sequence

STYLE = """
body{font-family:system-ui,sans-serif;font-size:16px;line-height:1.45;max-width:1200px;margin:1.5em auto;
padding:0 16px;color:#222}
h1{font-size:26px;margin-bottom:.2em}h2{font-size:21px;margin-top:1.6em;border-bottom:1px solid #ddd}
.lead{font-size:18px}.answers li{margin:.3em 0}.muted{color:#555;font-size:14px}
.flag{color:#a33}.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:14px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}td[data-sort]{text-align:right}
th{background:#f3f3f3}table.sortable th{cursor:pointer}
summary{cursor:pointer;font-size:14px}
figure{margin:1.2em 0}figure img{display:block;max-width:100%;height:auto;cursor:zoom-in}
figcaption{font-size:14px;color:#333;max-width:900px}
pre{font-size:13px;background:#f6f6f6;padding:8px;overflow-x:auto;max-width:100%}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;font-size:14px}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
#zoom{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);cursor:zoom-out;z-index:9}
#zoom img{max-width:100%;max-height:100%;margin:auto;position:absolute;inset:0}
"""

# Sorts a table by the clicked column (numbers by value, text by name); shows an image full size on click.
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th),
up=th.getAttribute('data-dir')!=='up';th.setAttribute('data-dir',up?'up':'down');
var key=function(r){var c=r.children[i],v=c.getAttribute('data-sort');v=v===null?c.textContent:v;
var n=parseFloat(v);return isNaN(n)?v:n;};
Array.from(b.rows).sort(function(x,y){var a=key(x),c=key(y);var r=(typeof a===typeof c)?(a<c?-1:a>c?1:0)
:(typeof a==='number'?-1:1);return up?r:-r;}).forEach(function(r){b.appendChild(r);});});});
var z=document.getElementById('zoom');
document.querySelectorAll('figure img').forEach(function(im){im.addEventListener('click',function(){
z.firstChild.src=im.src;z.style.display='block';});});
z.addEventListener('click',function(){z.style.display='none';});
window.addEventListener('load',function(){var n=0;for(var im of document.images){
if(im.src&&(!im.complete||im.naturalWidth===0))n++;}document.body.setAttribute('data-broken-images',String(n));});
"""


def esc(text: Any) -> str:
    return html.escape(str(text))


def number(value: Any, digits: int = 2, signed: bool = False) -> str:
    """A float for a table cell: fixed digits, blank for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], sortable: bool = True) -> str:
    """A table; numeric cells carry ``data-sort`` so sorting is by value; click a heading to sort."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cls = " class='sortable'" if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, tuple):  # (shown text, sort key)
        text, key = value
        return f"<td data-sort='{esc(key)}'>{text}</td>"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td data-sort='{value}'>{esc(value)}</td>"
    return f"<td>{esc(value)}</td>"


def figure(path: Path, caption: str) -> str:
    """An inline PNG at its natural size (never wider than the page), with a caption."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure id='{esc(path.stem)}'><img alt='{esc(path.stem)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{caption}</figcaption></figure>")


def document(title: str, body: str) -> str:
    """The whole page: head with inline style, the body, the zoom overlay and the scripts."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}"
            f"<div id='zoom'><img alt='enlarged figure'></div><script>{SCRIPT}</script></body></html>")
