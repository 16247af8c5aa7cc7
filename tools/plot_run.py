#!/usr/bin/env python
"""Plot loss, lr, img/s and held-out accuracy of training runs from their train.log."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.plot_run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
