#!/usr/bin/env python
"""Verification accuracy on .bin pair sets and IJB-B/C: see `face-verify --help`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.verify import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
