"""The test suite, a package: every folder under tests/ has an `__init__.py`, so pytest imports
each test file by its dotted path from the repository root (`tests.training.test_train`) and
shared helpers are imported the same way (`from tests.support.images import ...`)."""
