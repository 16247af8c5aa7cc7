#!/usr/bin/env python
"""Thin wrapper: `python tools/summary.py NAME...`, the same as the `face-summary` command."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.summary import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
