"""Threshold targets on a hand-made frame with hand-computed labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finscale.datasets.targets import label_end_dates, task_name, threshold_labels


def _bars() -> pd.DataFrame:
    index = pd.bdate_range("2020-01-06", periods=5, name="Date")
    return pd.DataFrame(
        {
            "Open": [99.0, 100.0, 100.0, 99.0, 101.0],
            "High": [100.5, 101.2, 100.0, 103.0, 100.8],
            "Low": [98.0, 99.0, 98.5, 98.9, 99.5],
            "Close": [100.0, 101.0, 99.0, 102.0, 100.0],
            # Adj Close far from Close: labels must ignore it
            "Adj Close": [50.0, 50.5, 49.5, 51.0, 50.0],
            "Volume": [1e6] * 5,
        },
        index=index,
    )


def test_horizon_one_labels_match_hand_computation() -> None:
    labels = threshold_labels(_bars(), 1, (0.005, 0.01, 0.02))
    # t0: 101.2/100-1 = +1.2%; t1: 100/101-1 < 0; t2: 103/99-1 = +4.04%; t3: 100.8/102-1 < 0
    expected = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 0, 0], [np.nan] * 3])
    np.testing.assert_array_equal(labels.to_numpy(), expected)
    assert list(labels.columns) == ["y_h1_0.5pct", "y_h1_1pct", "y_h1_2pct"]


def test_horizon_two_uses_max_high_and_leaves_tail_unlabeled() -> None:
    labels = threshold_labels(_bars(), 2, (0.005, 0.01, 0.02))
    # t0: max(101.2, 100) -> +1.2%; t1: max(100, 103)/101-1 = +1.98%; t2: 103/99-1 = +4.04%
    expected = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [np.nan] * 3, [np.nan] * 3])
    np.testing.assert_array_equal(labels.to_numpy(), expected)


def test_labels_read_raw_close_not_adjusted_or_open() -> None:
    bars = _bars()
    changed = bars.copy()
    changed.loc[changed.index[1], "Close"] = 99.0  # t1 upside becomes 100/99-1 = +1.01%
    before = threshold_labels(bars, 1, (0.01,)).iloc[1, 0]
    after = threshold_labels(changed, 1, (0.01,)).iloc[1, 0]
    assert (before, after) == (0.0, 1.0)
    changed_adj = bars.copy()
    changed_adj["Adj Close"] *= 3.0
    changed_adj["Open"] *= 0.5
    pd.testing.assert_frame_equal(threshold_labels(bars, 2, (0.01,)),
                                  threshold_labels(changed_adj, 2, (0.01,)))


def test_threshold_exactly_reached_is_positive() -> None:
    bars = _bars()
    bars.loc[bars.index[1], "High"] = 101.0  # exactly +1.0% over Close 100
    assert threshold_labels(bars, 1, (0.01,)).iloc[0, 0] == 1.0


def test_label_end_dates_point_h_bars_ahead() -> None:
    ends = label_end_dates(_bars().index, 3)
    assert ends.iloc[0] == _bars().index[3]
    assert ends.iloc[-3:].isna().all()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="High"):
        threshold_labels(_bars().drop(columns="High"), 1, (0.01,))
    bad = _bars()
    bad.loc[bad.index[0], "Close"] = 0.0
    with pytest.raises(ValueError, match="positive"):
        threshold_labels(bad, 1, (0.01,))


def test_task_names_are_stable() -> None:
    assert task_name(5, 0.03) == "y_h5_3pct"
    assert task_name(1, 0.005, "weekly") == "y_w1_0.5pct"
