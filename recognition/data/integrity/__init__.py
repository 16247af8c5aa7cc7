"""Integrity checks of `.rec` files: record framing, JPEG structure, full decodes (`rec_check`)
and the stamp that remembers a file passed."""
