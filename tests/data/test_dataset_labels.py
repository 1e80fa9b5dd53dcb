"""An .npz's labels: the number of classes (from 'classes', else the largest label + 1) and the
messages for labels out of range, negative labels and classes without images — each naming how
many labels are wrong, where the first is and what the range must be."""
import numpy as np
import pytest

from designer.data.dataset import DataError, load_dataset
from tests.train.test_loop import tiny_design


def npz(tmp_path, y, **more):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((len(y), 1, 8, 8), np.float32), y=np.asarray(y), **more)
    return path


def refusal(path, classes=10):
    with pytest.raises(DataError) as caught:
        load_dataset(path, tiny_design(classes, (1, 8, 8)))
    return str(caught.value)


def ten_classes_and(outlier, at=57, n=200):
    y = np.arange(n) % 10
    y[at] = outlier
    return y


def test_a_stray_label_beyond_the_design_s_classes_is_named(tmp_path):
    text = refusal(npz(tmp_path, ten_classes_and(12)))
    assert "'y' holds 1 label out of range (the first, 12, at y[57])" in text
    assert "labels must be 0 … 9" in text and "10 scores" in text
    assert "13 classes" not in text and "set out_features to 13" not in text


def test_a_stray_label_just_past_the_end_is_named_too(tmp_path):
    text = refusal(npz(tmp_path, ten_classes_and(10)))
    assert "1 label out of range (the first, 10, at y[57])" in text and "0 … 9" in text


def test_many_images_of_an_extra_class_are_a_design_mismatch_not_bad_labels(tmp_path):
    # eleven balanced classes for a ten-score design: the data is right, the design must change
    data = load_dataset(npz(tmp_path, np.arange(220) % 11), tiny_design(10, (1, 8, 8)))
    assert data.classes == [str(i) for i in range(11)]


def test_with_classes_the_range_comes_from_classes(tmp_path):
    y = ten_classes_and(12)
    y[90] = 15
    text = refusal(npz(tmp_path, y, classes=np.array(list("abcdefghij"))))
    assert "'y' holds 2 labels out of range (the first, 12, at y[57])" in text
    assert "'classes' names 10 classes, so labels must be 0 … 9" in text


def test_out_of_range_labels_in_the_validation_part_are_named(tmp_path):
    y_val = np.arange(20) % 2
    y_val[4] = 3
    path = npz(tmp_path, np.arange(20) % 2, classes=np.array(["a", "b"]),
               x_val=np.zeros((20, 1, 8, 8), np.float32), y_val=y_val)
    assert "'y_val' holds 1 label out of range (the first, 3, at y_val[4])" in refusal(path, 2)


def test_negative_labels_must_be_0_or_more(tmp_path):
    y = np.arange(40) % 4
    y[[5, 9]] = -3
    text = refusal(npz(tmp_path, y), 4)
    assert "'y' holds 2 negative labels (the first, -3, at y[5])" in text and "0 or more" in text
    assert "same label" not in text


def test_every_label_minus_one_says_both_problems(tmp_path):
    text = refusal(npz(tmp_path, np.full(30, -1)), 2)
    assert "30 negative labels" in text and "0 or more" in text
    assert "same label" in text and "two classes or more" in text
    assert "with 1 classes" not in text and "0 … 0" not in text


def test_a_gap_in_the_labels_names_the_missing_ones(tmp_path):
    y = np.arange(120) % 12
    y[y == 5] = 0
    y[y == 7] = 1  # classes 5 and 7 have no images
    text = refusal(npz(tmp_path, y), 12)
    assert "no image is labelled 5 and 7" in text and "up to 11" in text
    assert "'classes' array naming all 12" in text


def test_a_gap_before_a_few_stray_labels_says_they_may_be_out_of_range(tmp_path):
    # a design whose output isn't one score per class: only the labels tell
    text = refusal(npz(tmp_path, ten_classes_and(12)), 3)
    assert "no image is labelled 10 and 11" in text
    assert "if the data has 10 classes (0 … 9), 1 label is out of range (the first, 12, " \
           "at y[57])" in text


def test_a_huge_label_is_reported_without_counting_every_class(tmp_path):
    y = np.arange(100) % 2
    y[3] = 10 ** 12
    text = refusal(npz(tmp_path, y), 2)
    assert "the first, 1000000000000, at y[3]" in text
