"""training: optimiser, schedule, losses, checkpoints, the trainer and the run entry point."""
