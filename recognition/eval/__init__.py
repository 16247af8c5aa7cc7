"""Verification: evaluation targets (`targets/`: `.bin` pairs, IJB-B/C, attribute `.rec`; shared
with training), k-fold pair metrics, checkpoint loading/embedding, IJB-B/C templates, plots,
ONNX files (`onnx_model`: running them, `export_onnx`: writing them). The command lines
(`face-verify`, `face-eval-attributes`, `face-export-onnx`) are in `recognition.commands`.

Submodules are imported on use (MXNet, matplotlib and OpenCV load only when needed).
"""
