"""datasets: targets, timescales, splits, normalisation and zero-copy windowed datasets."""
