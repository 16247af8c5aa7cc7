#!/usr/bin/env python
"""Align photos with 5 landmarks to ArcFace's 112x112 template (a TSV or face2rec .lst)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.align import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
