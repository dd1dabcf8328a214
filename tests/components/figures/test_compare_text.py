"""Compare's figures show run and class names as text: never Plotly's pseudo-HTML, never a template."""
import json

import numpy as np

from components.figures import compare as figures
from components.figures.plotly_text import plotly_text

HOSTILE = '<a href="http://x">y</a> %{x}'


def test_plotly_text_escapes_tags_and_ampersands():
    assert plotly_text('<b>&amp;</b>') == "&lt;b&gt;&amp;amp;&lt;/b&gt;"
    assert plotly_text("lr 1e-3 · seed 2") == "lr 1e-3 · seed 2"


def strings(figure) -> list[str]:
    """Every string in the figure's JSON (names, templates, ticks, titles, meta)."""
    found = []

    def walk(value):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(figure.to_json()))
    return found


def assert_no_raw_markup(figure):
    """No string Plotly renders holds a raw `<a`, and no hover template holds the name itself
    (its `%{x}` would be expanded)."""
    assert not [t for t in strings(figure) if "<a" in t]
    templates = [trace.hovertemplate for trace in figure.data if trace.hovertemplate]
    assert templates and not [t for t in templates if "y&lt;/a&gt;" in t or "y</a>" in t]


def test_a_hostile_run_name_stays_text_in_curves_and_stars():
    curve = figures.Curve(HOSTILE, np.array([1.0, 2.0]), np.array([0.5, 0.6]), best=(2.0, 0.6))
    band = figures.Curve(f"{HOSTILE} (mean of 2 seeds)", np.array([1.0]), np.array([0.5]),
                         low=np.array([0.4]), high=np.array([0.6]))
    figure = figures.overlaid_curves([curve, band], y_title="validation accuracy")
    assert_no_raw_markup(figure)
    names = {trace.name for trace in figure.data if trace.name}
    assert plotly_text(HOSTILE) in names
    assert all("fullData.name" in trace.hovertemplate for trace in figure.data if trace.hovertemplate)


def test_hostile_run_and_class_names_stay_text_in_the_confusion_figures():
    classes = ["<b>cat</b>", HOSTILE]
    first, second = np.array([[3, 1], [0, 4]]), np.array([[4, 0], [1, 3]])
    difference = figures.confusion_difference(first, second, classes, (HOSTILE, "plain"))
    assert_no_raw_markup(difference)
    assert not [t for t in strings(difference) if "<b>" in t]
    assert_no_raw_markup(figures.confusion_matrix(first, classes, HOSTILE))
