#!/usr/bin/env python
"""Thin wrapper: `python tools/plan.py --classes C --workers W ...`, the same as `face-plan`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.plan import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
