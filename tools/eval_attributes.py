#!/usr/bin/env python
"""Held-out accuracy of an attribute network: see `face-eval-attributes --help`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.eval_attributes import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
