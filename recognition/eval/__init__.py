"""Verification: evaluation targets (`targets/`: `.bin` pairs, IJB-B/C, attribute `.rec`; shared
with training), k-fold pair metrics, checkpoint loading/embedding, IJB-B/C templates, plots.

Submodules are imported on use (MXNet, matplotlib and OpenCV load only when needed).
"""
