"""The training pictures: a single epoch's points drawn whole, inside the plot; the confusion
matrix's colour scale (any count visible, right answers and mistakes on different hues)."""
import numpy as np
from PySide6.QtGui import QImage

from designer.train.charts import CURVES_SIZE, TRAIN_COLOUR, cell_colour, curves_png


def _decode(png):
    image = QImage()
    assert image.loadFromData(png)
    return image


def _marker_columns(image, colour, x_from, x_to):
    found = []
    for x in range(x_from, x_to):
        for y in range(0, image.height(), 1):
            c = image.pixelColor(x, y)
            if (c.red(), c.green(), c.blue()) == colour:
                found.append(x)
                break
    return found


def test_a_single_epoch_is_drawn_whole_in_the_middle_of_the_plot():
    rows = [{"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 0.5,
             "val_accuracy": 0.8, "seconds": 1.0}]
    image = _decode(curves_png(rows))
    half = CURVES_SIZE[0] // 2
    columns = _marker_columns(image, TRAIN_COLOUR, 70, half - 140)  # the loss panel, left of
    assert columns, "the training point is drawn"                  # the legend
    width = max(columns) - min(columns) + 1
    assert width >= 6  # the whole marker (radius 3.5), not half of it cut off at an edge
    centre = (max(columns) + min(columns)) / 2
    assert 200 < centre < 340  # the middle of the plot, not its right edge (x ≈ 484)


def test_confusion_colours_show_small_counts_and_tell_right_from_wrong():
    empty, _ = cell_colour(0.0, False, False)
    one_wrong, _ = cell_colour(0.01, False, True)
    one_right, _ = cell_colour(0.01, True, True)
    all_right, white_text = cell_colour(1.0, True, True)
    half_wrong, _ = cell_colour(0.5, False, True)
    assert white_text
    # a single mistake in a hundred is visibly tinted, not as pale as an empty cell
    assert sum(empty.getRgb()[:3]) - sum(one_wrong.getRgb()[:3]) > 60
    # light to dark: more images, darker
    assert sum(half_wrong.getRgb()[:3]) < sum(one_wrong.getRgb()[:3])
    assert sum(all_right.getRgb()[:3]) < sum(one_right.getRgb()[:3])
    # mistakes lean red, right answers blue
    assert one_wrong.red() > one_wrong.blue() and one_right.blue() > one_right.red()
    assert all_right.blue() > all_right.red() and all_right.blue() < 200  # dark blue


def test_the_y_axis_ends_at_a_tick_above_the_largest_value():
    from designer.train.charts import _nice_ticks
    rng = np.random.default_rng(0)
    for hi in np.concatenate([rng.random(50) * 10, [2.3, 1.0, 100.0, 5.6e7, 0.031]]):
        ticks = _nice_ticks(0.0, float(hi))
        assert ticks[0] == 0.0 and ticks[-1] >= hi - 1e-12  # the top curve is never on the edge
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0]) and 3 <= len(ticks) <= 11
        assert ticks[-2] < hi  # one tick at most above it


def test_one_legend_above_both_plots_never_over_a_curve():
    """Curves at the top of the loss plot and along the accuracy plot's bottom (where the
    legends used to sit): the training colour appears in the title band only in the legend's
    middle strip, and the plots below keep it only for the curves."""
    rows = [{"epoch": e, "train_loss": 2.3, "train_accuracy": 0.05, "val_loss": 2.3,
             "val_accuracy": 0.05, "seconds": 1.0} for e in (1, 2, 3)]
    image = _decode(curves_png(rows))
    width = CURVES_SIZE[0]
    band = [x for x in range(width) for y in range(0, 28)
            if (lambda c: (c.red(), c.green(), c.blue()))(image.pixelColor(x, y)) == TRAIN_COLOUR]
    assert band and all(width / 2 - 120 < x < width / 2 + 120 for x in band)
