"""Thin wrapper: `python tools/summary.py NAME...`, the same as the `face-summary` command."""
import sys

from recognition.backbones.summary import main

if __name__ == "__main__":
    sys.exit(main())
