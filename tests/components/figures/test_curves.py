"""The training curves as a pure function of metric points."""
import plotly.graph_objects as go
import pytest

from components.figures.curves import BATCH_OPACITY, batch_x, curves_figure, infer_steps_per_epoch
from pipelines.runs.entities import MetricPoint

STEPS = 10


def batch(epoch, step, name, value, timestamp=0.0):
    return MetricPoint("batch", epoch, step, name, value, timestamp)


def epoch_end(epoch, name, value):
    return MetricPoint("epoch", epoch, STEPS, name, value, 0.0)


def two_epochs() -> list[MetricPoint]:
    points = []
    for epoch in (0, 1):
        for step in (1, 5, 10):
            points += [batch(epoch, step, "loss", 1.0 / (epoch * STEPS + step)),
                       batch(epoch, step, "accuracy", 0.5 + 0.02 * (epoch * STEPS + step))]
        points += [epoch_end(epoch, "loss", 0.5 - 0.1 * epoch), epoch_end(epoch, "accuracy", 0.8 + 0.05 * epoch),
                   epoch_end(epoch, "val_loss", 0.6 - 0.1 * epoch),
                   epoch_end(epoch, "val_accuracy", 0.75 + 0.05 * epoch)]
    return points


def traces(figure: go.Figure, name: str) -> list[go.Scatter]:
    return [trace for trace in figure.data if trace.name == name]


def test_epoch_curves_for_train_and_validation_in_both_panels():
    figure = curves_figure(two_epochs())
    train, validation = traces(figure, "train"), traces(figure, "validation")
    assert [t.xaxis for t in train] == ["x", "x2"] and [t.xaxis for t in validation] == ["x", "x2"]
    loss, accuracy = train
    assert list(loss.x) == [1, 2] and list(loss.y) == pytest.approx([0.5, 0.4])  # epochs numbered from 1
    assert list(accuracy.y) == pytest.approx([0.8, 0.85])
    assert list(validation[0].y) == pytest.approx([0.6, 0.5])
    assert loss.mode == "lines+markers"
    assert [a.text for a in figure.layout.annotations][:2] == ["Loss", "Accuracy"]


def test_batch_trace_is_a_thinner_lighter_line_at_fractional_epochs():
    figure = curves_figure(two_epochs())
    batches = traces(figure, "train (batches)")
    assert len(batches) == 2
    loss = batches[0]
    assert list(loss.x) == pytest.approx([0.1, 0.5, 1.0, 1.1, 1.5, 2.0])
    assert loss.mode == "lines"
    epoch_trace = traces(figure, "train")[0]
    assert loss.opacity == BATCH_OPACITY < 1
    assert loss.line.width < epoch_trace.line.width
    assert loss.line.color == epoch_trace.line.color


def test_best_epoch_is_marked_with_a_labelled_line_and_a_star():
    figure = curves_figure(two_epochs(), best_epoch=1)
    assert {shape.x0 for shape in figure.layout.shapes} == {2}
    assert len(figure.layout.shapes) == 2  # one line per panel
    assert "best epoch 2" in [a.text for a in figure.layout.annotations]
    (star,) = traces(figure, "best epoch")
    assert list(star.x) == [2] and list(star.y) == pytest.approx([0.5])  # val_loss of that epoch
    assert star.marker.symbol == "star"


def test_without_best_epoch_nothing_is_marked():
    figure = curves_figure(two_epochs())
    assert not figure.layout.shapes and not traces(figure, "best epoch")


def test_no_points_give_empty_but_valid_panels():
    figure = curves_figure([], best_epoch=None)
    assert all(len(trace.x) == 0 for trace in figure.data)
    assert figure.to_dict()["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert go.Figure(figure.to_dict())  # round-trips as a valid figure


def test_steps_per_epoch_inferred_or_given():
    points = two_epochs()
    assert infer_steps_per_epoch(points) == STEPS
    assert infer_steps_per_epoch([batch(0, 7, "loss", 1.0)]) == 7
    assert infer_steps_per_epoch([]) == 0
    assert batch_x(batch(2, 5, "loss", 1.0), 20) == 2.25
    assert list(traces(curves_figure(points, steps_per_epoch=20), "train (batches)")[0].x)[0] == 0.05


def test_revision_keeps_the_zoom_of_the_same_run():
    assert curves_figure([], revision="abc").layout.uirevision == "abc"


def test_axes_are_titled_per_panel():
    layout = curves_figure(two_epochs()).layout
    assert [layout.xaxis.title.text, layout.xaxis2.title.text] == ["epoch", "epoch"]
    assert [layout.yaxis.title.text, layout.yaxis2.title.text] == ["loss", "accuracy"]
    assert len(curves_figure(two_epochs()).data) == 6  # per panel: batches, train, validation


def test_batch_points_are_thinned_to_a_bound_keeping_the_newest():
    from components.figures.curves import MAX_BATCH_POINTS, thinned

    points = [MetricPoint("batch", i // 100, i % 100 + 1, "loss", float(i), 0.0) for i in range(10_000)]
    kept = thinned(points)
    assert len(kept) <= MAX_BATCH_POINTS + 1 and kept[-1] is points[-1] and kept[0] is points[0]
    assert thinned(points[:10]) == points[:10]
    figure = curves_figure(points + [MetricPoint("epoch", 99, 100, "loss", 0.5, 0.0)], steps_per_epoch=100)
    assert max(len(trace.x) for trace in figure.data) <= MAX_BATCH_POINTS + 1


def test_the_batch_curve_has_no_jump_at_epoch_boundaries():
    """Keras logs running means that restart each epoch; drawn as they are, a falling loss jumps down
    at each new epoch (from the mean of the whole epoch to one batch). Per-batch values do not."""
    per_batch = [2.0 - 0.1 * i for i in range(20)]  # a steady fall over two epochs of 10 batches
    points = []
    for epoch in (0, 1):
        seen = per_batch[epoch * STEPS:(epoch + 1) * STEPS]
        points += [batch(epoch, step, "loss", sum(seen[:step]) / step) for step in range(1, STEPS + 1)]
    (curve,) = [t for t in traces(curves_figure(points), "train (batches)") if t.xaxis == "x"]
    assert list(curve.y) == pytest.approx(per_batch)
    assert max(abs(b - a) for a, b in zip(curve.y, curve.y[1:])) == pytest.approx(0.1)


def test_before_the_first_point_the_axes_show_the_planned_epochs_and_accuracy_from_0_to_1():
    layout = curves_figure([], total_epochs=3).layout
    assert list(layout.xaxis.range) == [0, 3] and list(layout.xaxis2.range) == [0, 3]
    assert list(layout.yaxis2.range) == [0, 1] and list(layout.yaxis.range) == [0, 1]
    with_points = curves_figure(two_epochs(), total_epochs=3).layout
    assert list(with_points.xaxis.range) == [0, 3] and with_points.yaxis2.range is None  # data decides


def test_a_loss_spanning_orders_of_magnitude_is_drawn_on_a_log_scale():
    diverged = [batch(0, 1, "loss", 2.3), batch(0, 2, "loss", 25001.15), batch(0, 3, "loss", 16667.4)]
    layout = curves_figure(diverged).layout
    assert layout.yaxis.type == "log" and layout.yaxis.title.text == "loss (log scale)"
    assert curves_figure(two_epochs()).layout.yaxis.type in (None, "-", "linear")


def test_findings_are_shaded_over_their_stretch_with_their_title_and_sentence():
    from pipelines.runs.doctor import Finding

    finding = Finding("diverged", "error", 0.3, 2.0, "Diverged in epoch 1: the loss jumped from 2.3 to 5e+04.")
    figure = curves_figure(two_epochs(), findings=[finding])
    regions = [shape for shape in figure.layout.shapes if shape.type == "rect"]
    assert len(regions) == 2 and {(r.x0, r.x1) for r in regions} == {(0.3, 2.0)}  # both panels
    labels = [a for a in figure.layout.annotations if a.text == "Diverged"]
    assert {a.xref for a in labels} == {"x", "x2"} and all(a.hovertext == finding.message for a in labels)
