"""Indicator families: vectorised functions ``(FeatureInputs, **params) -> np.ndarray``."""
