import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs root (network namespaces, AF_PACKET)")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
