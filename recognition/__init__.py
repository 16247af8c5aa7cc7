"""Face-recognition training toolkit on MXNet/Gluon.

Importing this package does nothing but define names: no Horovod initialisation, no argument
parsing, no environment changes (those belong to the entry points).
"""
__version__ = "0.1.0"
