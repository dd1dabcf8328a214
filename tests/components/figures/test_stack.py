"""The diagram of a model's layer stack, from a hand-made validation result (no Keras)."""
from components.figures.stack import BLOCK_COLOURS, stack_diagram
from pipelines.modelspec.validation import LayerRow, Validation


def validation(*rows: LayerRow) -> Validation:
    return Validation(rows=rows, total_params=sum(r.params for r in rows), trainable_params=0, problems=(),
                      input_shape=(28, 28, 1), output_activation="softmax", from_logits=False,
                      label_mode="int")


LENET_ISH = validation(
    LayerRow(0, "conv", "Conv2D", (None, 26, 26, 8), 80, 80),
    LayerRow(1, "flat", "Flatten", (None, 5408), 0, 0),
    LayerRow(2, "out", "Dense", (None, 10), 54090, 54090),
)


def test_one_block_label_and_hover_point_per_layer_after_the_input():
    figure = stack_diagram(LENET_ISH)
    assert len(figure.layout.shapes) == 4 and len(figure.data) == 4  # input + 3 layers
    labels = [a.text for a in figure.layout.annotations]
    assert labels == ["<b>Input</b><br>28×28×1", "<b>Conv2D</b><br>26×26×8", "<b>Flatten</b><br>5408",
                      "<b>Dense</b><br>10"]
    assert "54,090 params" in figure.data[3].hovertemplate


def test_blocks_are_coloured_by_type_left_to_right_without_overlap():
    shapes = stack_diagram(LENET_ISH).layout.shapes
    assert [s.fillcolor for s in shapes[1:]] == [BLOCK_COLOURS["Conv2D"], BLOCK_COLOURS["Flatten"],
                                                 BLOCK_COLOURS["Dense"]]
    assert all(left.x1 < right.x0 for left, right in zip(shapes, shapes[1:]))
    assert shapes[1].y1 - shapes[1].y0 > shapes[3].y1 - shapes[3].y0  # a 26x26 map is taller than 10 units


def test_a_layer_without_a_shape_is_red_and_axes_are_hidden():
    figure = stack_diagram(validation(LayerRow(0, "bad", "Dense", None, 0, 0)))
    assert figure.layout.shapes[1].fillcolor == "#FF4B4B"
    assert figure.layout.annotations[1].text == "<b>Dense</b><br>?"
    assert figure.layout.xaxis.visible is False and figure.layout.yaxis.visible is False
