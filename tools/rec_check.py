#!/usr/bin/env python
"""Find every damaged record of a .rec (framing, image headers, full decode of each image)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.rec_check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
