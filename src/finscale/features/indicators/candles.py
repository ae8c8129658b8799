"""Candle anatomy (parts of the bar's range), gaps and TA-Lib candle patterns (unitless)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import talib

from finscale.features.inputs import FeatureInputs, lag, rolling_mean, safe_div

CANDLE_PATTERNS: dict[str, Callable[..., np.ndarray]] = {
    "doji": talib.CDLDOJI,
    "engulfing": talib.CDLENGULFING,
    "harami": talib.CDLHARAMI,
    "hammer": talib.CDLHAMMER,
    "spinning_top": talib.CDLSPINNINGTOP,
    "marubozu": talib.CDLMARUBOZU,
    "long_line": talib.CDLLONGLINE,
    "short_line": talib.CDLSHORTLINE,
    "high_wave": talib.CDLHIGHWAVE,
    "belt_hold": talib.CDLBELTHOLD,
    "closing_marubozu": talib.CDLCLOSINGMARUBOZU,
    "hikkake": talib.CDLHIKKAKE,
}


def _parts(x: FeatureInputs) -> dict[str, np.ndarray]:
    span = x.high - x.low
    top, bottom = np.maximum(x.open, x.close), np.minimum(x.open, x.close)
    previous = lag(x.close, 1)
    true_high, true_low = np.fmax(x.high, previous), np.fmin(x.low, previous)
    return {
        "body": safe_div(x.close - x.open, span),
        "upper_shadow": safe_div(x.high - top, span),
        "lower_shadow": safe_div(bottom - x.low, span),
        "close_location": safe_div((x.close - x.low) - (x.high - x.close), span),
        "range": safe_div(span, x.close),
        "true_range": safe_div(true_high - true_low, x.close),
        "gap": safe_div(x.open, previous) - 1.0,
        "intraday": np.log(x.close / x.open),
    }


def candle_part(x: FeatureInputs, part: str, window: int) -> np.ndarray:
    """One part of the bar (fractions of its range or of Close), averaged over ``window``."""
    parts = x.cached("candle_parts", lambda: _parts(x))
    if part not in parts:
        raise ValueError(f"unknown candle part '{part}'; known: {sorted(parts)}")
    values = parts[part]
    return values if window == 1 else rolling_mean(values, window)


def candle_pattern(x: FeatureInputs, pattern: str, window: int) -> np.ndarray:
    """TA-Lib pattern signal (+1 bullish, -1 bearish, 0 none), averaged over ``window``."""
    if pattern not in CANDLE_PATTERNS:
        raise ValueError(f"unknown candle pattern '{pattern}'; known: {sorted(CANDLE_PATTERNS)}")
    signal = CANDLE_PATTERNS[pattern](x.open, x.high, x.low, x.close).astype(np.float64) / 100.0
    signal[: CANDLE_LOOKBACK] = np.nan
    return signal if window == 1 else rolling_mean(signal, window)


CANDLE_LOOKBACK = 12  # TA-Lib patterns read up to ~11 prior bars for their averages


def balance_of_power(x: FeatureInputs, window: int) -> np.ndarray:
    """(Close - Open) / (High - Low) averaged over the window (-1..1)."""
    return rolling_mean(safe_div(x.close - x.open, x.high - x.low), window)
