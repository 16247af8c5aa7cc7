"""Command lines: argparse and `main(argv)`, one module per command, over the library code in
the other subpackages; `entry.py` holds their one shape (`error: ...`, exit 2). `tools/*.py`,
`recognition/train.py` and the console scripts of setup.py call these; library code never
imports them."""
