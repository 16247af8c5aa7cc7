#!/usr/bin/env python
"""Make .lst and .rec/.idx datasets (MXNet's im2rec flags, plus --layout insightface)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.im2rec import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
