#!/usr/bin/env python
"""Inspect, merge and re-split classifier shards (same as the `face-shards` command)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.shards import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
