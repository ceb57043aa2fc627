"""A small horizontal bar chart as SVG: notebooks show it inline, with no plotting library to install."""
from __future__ import annotations

from html import escape


class Bars:
    """Grouped horizontal bars; displays itself in Jupyter (``_repr_svg_``) and prints as text elsewhere."""

    def __init__(self, rows: list[tuple[str, dict[str, float]]], title: str = "", unit: str = ""):
        self.rows, self.title, self.unit = rows, title, unit
        self.series = list(dict.fromkeys(name for _, values in rows for name in values))

    def _repr_svg_(self) -> str:
        colours = ("#3f6fb5", "#e3883b", "#5a9e5a", "#9c5fb5")
        label_w, bar_w, bar_h, gap = 230, 330, 14, 10
        top = 28 if self.title else 8
        top_value = max((v for _, values in self.rows for v in values.values()), default=1) or 1
        height = top + len(self.rows) * (len(self.series) * bar_h + gap) + 24
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
               'font-family="sans-serif" font-size="12">']
        if self.title:
            out.append(f'<text x="4" y="16" font-weight="bold">{escape(self.title)}</text>')
        y = top
        for label, values in self.rows:
            out.append(f'<text x="{label_w - 6}" y="{y + bar_h * len(self.series) / 2 + 4}" '
                       f'text-anchor="end">{escape(label)}</text>')
            for i, name in enumerate(self.series):
                value = values.get(name, 0)
                width = max(1.0, bar_w * value / top_value)
                out.append(f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h - 2}" '
                           f'fill="{colours[i % len(colours)]}"><title>{escape(name)}: {value:g}</title></rect>')
                out.append(f'<text x="{label_w + width + 4:.1f}" y="{y + bar_h - 4}">{value:g}{escape(self.unit)}</text>')
                y += bar_h
            y += gap
        for i, name in enumerate(self.series):
            x = label_w + i * 140
            out.append(f'<rect x="{x}" y="{y + 4}" width="10" height="10" fill="{colours[i % len(colours)]}"/>')
            out.append(f'<text x="{x + 14}" y="{y + 13}">{escape(name)}</text>')
        out.append("</svg>")
        return "".join(out)

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        for label, values in self.rows:
            lines.append(f"{label}: " + ", ".join(f"{k} {v:g}{self.unit}" for k, v in values.items()))
        return "\n".join(lines)
