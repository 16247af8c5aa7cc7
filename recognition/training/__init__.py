"""Pieces the training script composes (workers and collectives are in recognition.parallel):
the network and objectives, precision, lr schedules (schedules/), checkpoints and the run lock, logging and
verification."""
