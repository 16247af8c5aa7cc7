"""Pieces the training script composes: workers and collectives (distributed, comm), threads,
the network and objectives, precision, schedule, checkpoints and the run lock, logging and
verification."""
