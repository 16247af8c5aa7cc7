#!/usr/bin/env python
"""Convert a .rec dataset between the plain MXNet and the InsightFace layouts."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.rec_convert import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
