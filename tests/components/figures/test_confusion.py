"""The confusion matrix figure, and reading a clicked cell back from it."""
import numpy as np

from components.figures.confusion import HIGHLIGHT_COLOR, confusion_figure, selected_cell

CONFUSION = np.array([[50, 2, 0], [7, 40, 1], [0, 0, 45]])
NAMES = ("cat", "dog", "owl")


def test_confusion_figure_writes_the_counts_and_has_a_clickable_marker_per_cell():
    figure = confusion_figure(CONFUSION, NAMES, selected=(1, 0))
    heatmap, markers = figure.data
    assert [list(row) for row in heatmap.text] == [["50", "2", ""], ["7", "40", "1"], ["", "", "45"]]
    assert heatmap.texttemplate == "%{text}"
    assert len(markers.x) == 9 and markers.marker.opacity == 0
    cell = list(markers.customdata[3])  # row-major: true 1, predicted 0
    assert cell[:3] == [1, 0, 7] and cell[3:] == ["dog", "cat"]
    (outline,) = figure.layout.shapes
    assert (outline.x0, outline.x1, outline.y0, outline.y1) == (-0.5, 0.5, 0.5, 1.5)
    assert outline.line.color == HIGHLIGHT_COLOR
    assert figure.layout.clickmode == "event+select"


def test_axes_name_the_classes_true_down_and_predicted_across():
    figure = confusion_figure(CONFUSION, NAMES)
    assert figure.layout.xaxis.title.text == "predicted class" and figure.layout.yaxis.title.text == "true class"
    assert list(figure.layout.xaxis.ticktext) == list(NAMES) == list(figure.layout.yaxis.ticktext)
    assert figure.layout.yaxis.autorange == "reversed"
    assert not figure.layout.shapes  # nothing selected, nothing outlined


def test_a_click_on_the_matrix_names_its_cell():
    selection = {"points": [{"curve_number": 1, "point_index": 3, "x": 0, "y": 1, "customdata": [1, 0, 7, "dog", "cat"]}]}
    assert selected_cell(selection) == (1, 0)
    assert selected_cell({"points": []}) is None
    assert selected_cell(None) is None


def test_every_marker_of_the_figure_reads_back_as_its_own_cell():
    markers = confusion_figure(CONFUSION, NAMES).data[1]
    cells = [selected_cell({"points": [{"customdata": list(data)}]}) for data in markers.customdata]
    assert cells == [(true, predicted) for true in range(3) for predicted in range(3)]
