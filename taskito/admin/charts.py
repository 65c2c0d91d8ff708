"""Charts for the dashboard, drawn on the server as inline SVG: no script and no style
attribute (colours come from dashboard.css classes), so a strict Content Security Policy
allows them, and nothing is downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def runs_chart(points: Sequence[dict[str, Any]], *, width: int, height: int, label: str,
               axis: bool = True) -> SafeString:
    """Stacked bars of succeeded and failed runs per minute, and a line of the failure rate
    (0-100 % over the chart's height) through the minutes that had runs. `points` are
    Queue.overview() throughput points ({"minute", "succeeded", "failed"})."""
    left, bottom, top = (34, 18, 8) if axis else (1, 1, 2)
    plot_w, plot_h = width - left - 2, height - top - bottom
    peak = max([1, *(p["succeeded"] + p["failed"] for p in points)])
    slot = plot_w / max(len(points), 1)
    parts = [f'<svg class="taskito-chart-svg" viewBox="0 0 {width} {height}" '
             f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}">',
             f"<title>{escape(label)}</title>",
             f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 2}" '
             f'y2="{top + plot_h}"/>']
    if axis:
        parts.append(f'<text class="label" x="{left - 4}" y="{top + 10}" '
                     f'text-anchor="end">{peak}</text>')
        parts.append(f'<text class="label" x="{left - 4}" y="{top + plot_h}" '
                     f'text-anchor="end">0</text>')
    rate: list[str] = []
    for i, p in enumerate(points):
        ok, bad = p["succeeded"], p["failed"]
        x, w = left + i * slot + slot * 0.1, max(slot * 0.8, 0.5)
        ok_h, bad_h = plot_h * ok / peak, plot_h * bad / peak
        minute = p["minute"].strftime("%H:%M")
        tip = _("%(minute)s: %(ok)d succeeded, %(bad)d failed") % {
            "minute": minute, "ok": ok, "bad": bad}
        parts.append(f'<g class="bar" data-minute="{minute}"><title>{escape(tip)}</title>')
        if ok:
            parts.append(f'<rect class="bar-ok" x="{_n(x)}" y="{_n(top + plot_h - ok_h)}" '
                         f'width="{_n(w)}" height="{_n(ok_h)}"/>')
        if bad:
            parts.append(f'<rect class="bar-bad" x="{_n(x)}" '
                         f'y="{_n(top + plot_h - ok_h - bad_h)}" width="{_n(w)}" '
                         f'height="{_n(bad_h)}"/>')
        parts.append("</g>")
        if ok + bad:
            share = bad / (ok + bad)
            rate.append(f"{_n(x + w / 2)},{_n(top + plot_h - plot_h * share)}")
    if len(rate) > 1:
        parts.append(f'<polyline class="rate" points="{" ".join(rate)}"/>')
    elif rate:
        cx, cy = rate[0].split(",")
        parts.append(f'<circle class="rate-dot" cx="{cx}" cy="{cy}" r="2"/>')
    if axis and points:
        parts.append(f'<text class="label" x="{left}" y="{height - 4}">'
                     f'{points[0]["minute"].strftime("%H:%M")}</text>')
        parts.append(f'<text class="label" x="{width - 2}" y="{height - 4}" '
                     f'text-anchor="end">{points[-1]["minute"].strftime("%H:%M")}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text in it is escaped above
