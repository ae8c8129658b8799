"""The explicit map from a declaration's ``family`` to the function that computes it.

A dict literal, not reflection: adding a family means importing it and naming it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from finscale.features.indicators import (
    calendar,
    candles,
    cross_asset,
    momentum,
    ranges,
    returns,
    risk,
    trend,
    volatility,
    volume,
)
from finscale.features.inputs import FeatureInputs

FamilyFunction = Callable[..., np.ndarray]

FAMILIES: Mapping[str, FamilyFunction] = MappingProxyType({
    # returns
    "log_return": returns.log_return,
    "return_acceleration": returns.return_acceleration,
    "return_zscore": returns.return_zscore,
    # momentum
    "rsi": momentum.rsi,
    "rsi_weekly": momentum.rsi_weekly,
    "stochrsi_k": momentum.stochrsi_k,
    "stochrsi_k_weekly": momentum.stochrsi_k_weekly,
    "stoch_k": momentum.stoch_k,
    "stoch_d": momentum.stoch_d,
    "cci": momentum.cci,
    "mfi": momentum.mfi,
    "williams_r": momentum.williams_r,
    "demarker": momentum.demarker,
    "aroon_oscillator": momentum.aroon_oscillator,
    "aroon_up": momentum.aroon_up,
    "aroon_down": momentum.aroon_down,
    "cmo": momentum.cmo,
    "ultimate_oscillator": momentum.ultimate_oscillator,
    "trix": momentum.trix,
    "ppo": momentum.ppo,
    # trend
    "ma_distance": trend.ma_distance,
    "ma_slope": trend.ma_slope,
    "ma_spread": trend.ma_spread,
    "ma_cross_age": trend.ma_cross_age,
    "macd_line": trend.macd_line,
    "macd_signal": trend.macd_signal,
    "macd_histogram": trend.macd_histogram,
    "adx": trend.adx,
    "adxr": trend.adxr,
    "plus_di": trend.plus_di,
    "minus_di": trend.minus_di,
    "di_spread": trend.di_spread,
    "ichimoku": trend.ichimoku,
    "donchian_position": trend.donchian_position,
    "donchian_width": trend.donchian_width,
    "log_trend_slope": trend.log_trend_slope,
    "log_trend_r2": trend.log_trend_r2,
    "sar_distance": trend.sar_distance,
    # volatility
    "close_to_close_vol": volatility.close_to_close,
    "parkinson_vol": volatility.parkinson,
    "garman_klass_vol": volatility.garman_klass,
    "rogers_satchell_vol": volatility.rogers_satchell,
    "yang_zhang_vol": volatility.yang_zhang,
    "atr_fraction": volatility.atr_fraction,
    "bollinger_percent_b": volatility.bollinger_percent_b,
    "bollinger_width": volatility.bollinger_width,
    "keltner_width": volatility.keltner_width,
    "squeeze_ratio": volatility.squeeze_ratio,
    "volatility_ratio": volatility.volatility_ratio,
    # volume
    "obv_zscore": volume.obv_zscore,
    "adosc_relative": volume.adosc_relative,
    "ad_zscore": volume.ad_zscore,
    "volume_ratio": volume.volume_ratio,
    "volume_zscore": volume.volume_zscore,
    "chaikin_money_flow": volume.chaikin_money_flow,
    "vpt_zscore": volume.vpt_zscore,
    "klinger": volume.klinger,
    "force_index": volume.force_index,
    "up_volume_share": volume.up_volume_share,
    "vwap_distance": volume.vwap_distance,
    # ranges
    "distance_to_high": ranges.distance_to_high,
    "distance_to_low": ranges.distance_to_low,
    "bars_since_high": ranges.bars_since_high,
    "bars_since_low": ranges.bars_since_low,
    "close_drawdown": ranges.close_drawdown,
    # risk
    "sharpe": risk.sharpe,
    "sortino": risk.sortino,
    "value_at_risk": risk.value_at_risk,
    "conditional_var": risk.conditional_var,
    "skewness": risk.skewness,
    "kurtosis": risk.kurtosis,
    "max_drawdown": risk.max_drawdown,
    "ulcer_index": risk.ulcer_index,
    "hit_rate": risk.hit_rate,
    "autocorrelation": risk.autocorrelation,
    "downside_share": risk.downside_share,
    # candles
    "candle_part": candles.candle_part,
    "candle_pattern": candles.candle_pattern,
    "balance_of_power": candles.balance_of_power,
    # calendar
    "calendar_cycle": calendar.calendar_cycle,
    "days_to_month_end": calendar.days_to_month_end,
    "quarter_end_month": calendar.quarter_end_month,
    "days_since_previous_bar": calendar.days_since_previous_bar,
    # cross-asset (need the VIX close aligned to the bars)
    "vix_level": cross_asset.vix_level,
    "vix_minus_realised": cross_asset.vix_minus_realised,
    "vix_realised_ratio": cross_asset.vix_realised_ratio,
    "vix_log_change": cross_asset.vix_log_change,
    "vix_zscore": cross_asset.vix_zscore,
    "vix_return_correlation": cross_asset.vix_return_correlation,
})

CROSS_ASSET_FAMILIES: frozenset[str] = frozenset({
    "vix_level", "vix_minus_realised", "vix_realised_ratio", "vix_log_change", "vix_zscore",
    "vix_return_correlation",
})


def family_function(family: str) -> FamilyFunction:
    """The function for ``family``; a clear error for an unknown one."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise KeyError(f"unknown feature family '{family}'; known: {sorted(FAMILIES)}") from None


def compute_one(inputs: FeatureInputs, family: str, params: Mapping[str, object]) -> np.ndarray:
    """Run one family on ``inputs``."""
    return family_function(family)(inputs, **params)
