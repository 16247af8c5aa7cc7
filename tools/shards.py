"""Inspect, merge and re-split classifier shards (same as the `face-shards` command)."""
import sys

from recognition.heads.shards_cli import main

if __name__ == "__main__":
    sys.exit(main())
