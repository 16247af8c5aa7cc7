"""Verification: k-fold pair metrics, checkpoint loading/embedding, IJB-B/C templates, plots.

Submodules are imported on use (MXNet, matplotlib and OpenCV load only when needed).
"""
