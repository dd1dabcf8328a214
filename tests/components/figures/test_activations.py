"""A layer's output as tiled feature maps or a strip of unit bars."""
import numpy as np
import pytest

from components.figures.activations import (NEGATIVE_COLOR, POSITIVE_COLOR, feature_maps_figure, grid_shape,
                                            tile_feature_maps, unit_strip_figure)


@pytest.mark.parametrize("count, grid", [(1, (1, 1)), (6, (2, 3)), (16, (4, 4)), (64, (8, 8)), (120, (15, 8))])
def test_feature_map_grid_tiles_every_map(count, grid):
    maps = np.random.default_rng(0).random((5, 4, count)).astype(np.float32)
    rows, columns = grid_shape(count)
    assert (rows, columns) == grid
    tiled = tile_feature_maps(maps)
    assert tiled.shape == (rows * 6 - 1, columns * 5 - 1)
    tiles = [tiled[r * 6:r * 6 + 5, c * 5:c * 5 + 4] for r in range(rows) for c in range(columns)]
    filled = [tile for tile in tiles if not np.isnan(tile).all()]
    assert len(filled) == count
    np.testing.assert_allclose(filled[count - 1], maps[..., count - 1] / maps[..., count - 1].max(), rtol=1e-6)
    if rows > 1:
        assert np.isnan(tiled[5]).all()  # the gap under the first row of maps


def test_feature_maps_figure_numbers_each_map_and_unit_strip_has_a_bar_per_unit():
    figure = feature_maps_figure(np.ones((7, 7, 6), np.float32))
    assert [a.text for a in figure.layout.annotations] == [str(i) for i in range(1, 7)]
    strip = unit_strip_figure(np.array([0.5, -1.0, 2.0], np.float32))
    assert list(strip.data[0].y) == [0.5, -1.0, 2.0]
    assert strip.data[0].marker.color[1] == NEGATIVE_COLOR
    assert list(unit_strip_figure(np.zeros(3), ("a", "b", "c")).data[0].x) == ["a", "b", "c"]


def test_negative_maps_get_a_diverging_scale_and_positive_ones_grey():
    (signed,) = feature_maps_figure(np.array([[[-1.0], [1.0]]], np.float32)).data
    (plain,) = feature_maps_figure(np.ones((2, 2, 1), np.float32)).data
    assert (signed.zmin, signed.zmax, signed.zmid) == (-1, 1, 0)
    assert plain.zmin == 0 and plain.zmid is None


def test_unit_strip_axes_say_units_or_classes():
    strip = unit_strip_figure(np.array([1.0, 2.0]))
    assert len(strip.data) == 1 and set(strip.data[0].marker.color) == {POSITIVE_COLOR}
    assert strip.layout.xaxis.title.text == "unit" and strip.layout.yaxis.title.text == "activation"
    named = unit_strip_figure(np.zeros(2), ("cat", "dog"))
    assert named.layout.xaxis.title.text == "class" and named.layout.xaxis.type == "category"
