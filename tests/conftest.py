import os

import pytest

FIXTURE_DIR = os.path.join(os.path.dirname(__file__), "fixtures", "mnist_tiny")


@pytest.fixture
def mnist_tiny_dir():
    return FIXTURE_DIR
