"""`python recognition/train.py CONFIG [--key value ...]` (also under `horovodrun`): the same as
the `face-train` command, `recognition.commands.train` (`--help` lists every key).

A thin wrapper like tools/*.py. It loads no MXNet before `main`, which first sets each worker's
thread counts (MXNet reads them once, when it loads), then loads MXNet and enables
faulthandler (`commands.train.start`).
"""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.train import main  # noqa: E402  (imports no MXNet)

if __name__ == "__main__":
    sys.exit(main())
