"""Class names are the user's folder names: every figure that shows them shows them as written,
never as Plotly's pseudo-HTML (a live link) or a hover template."""
import dataclasses

import numpy as np

from components.figures.activations import unit_strip_figure
from components.figures.class_balance import distribution_chart
from components.figures.confusion import confusion_figure
from components.figures.probabilities import probability_figure
from pipelines.data.catalog import get_info

HOSTILE = ('<a href="http://127.0.0.1:9/track">shoes</a>', "<b>bold</b> & co")


def test_every_figure_with_class_names_escapes_them():
    info = dataclasses.replace(get_info("mnist"), class_names=HOSTILE)
    overview = {"train_counts": [3, 4], "test_counts": [1, 2]}
    figures = [distribution_chart(info, overview), confusion_figure(np.array([[3, 1], [0, 2]]), HOSTILE),
               probability_figure(np.array([0.3, 0.7]), HOSTILE), unit_strip_figure(np.array([0.1, 0.9]), HOSTILE)]
    for figure in figures:
        text = str(figure.to_dict())  # not to_json: it writes "<" as an escape
        assert "<a href" not in text and "<b>" not in text, text[:400]
        assert "&lt;a href=" in text and "&amp; co" in text
