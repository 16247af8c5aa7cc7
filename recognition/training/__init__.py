"""Pieces the training script composes: schedule, checkpoints, logging, verification."""
