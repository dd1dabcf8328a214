"""The one way user-supplied text (run names, class/folder names) reaches a Plotly label.

Plotly renders a pseudo-HTML subset in trace names, axis ticks, hover labels and annotations
(`<a href>` becomes a live SVG link, `<b>`, `<br>`, ...), and expands `%{...}` in hovertemplates.
So user text goes through `plotly_text` before it becomes a name or a tick label, and never into a
hovertemplate string itself: templates name it as `%{fullData.name}`, `%{meta[0]}` or an axis value.
Plotly decodes the entities back, so the viewer sees the text exactly as written.
"""
from __future__ import annotations

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def plotly_text(text: object) -> str:
    """`text` with `&`, `<` and `>` as HTML entities: shown as written, never parsed as a tag."""
    return "".join(_ENTITIES.get(char, char) for char in str(text))
