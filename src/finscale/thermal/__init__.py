"""thermal: sensors, the soft/hard policy, the in-training guard and the flow gate."""
