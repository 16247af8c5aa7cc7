"""Helpers shared by tests in every folder: image folders (images.py), rendered face sets
(tiny_faces.py), stand-ins for checkpoint tests (fakes.py), the README's working copy
(readme_fixtures.py). `REPO` is the repository root."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
