#!/usr/bin/env python
"""Draw a contact sheet of a .rec (N identities x K images, labels and keys) as a PNG."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.preview import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
