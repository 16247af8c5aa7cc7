#!/usr/bin/env python
"""Export an MXNet checkpoint to ONNX and check it with onnxruntime: see `--help`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.export_onnx import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
