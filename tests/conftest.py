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


@pytest.fixture
def control_router(tmp_path):
    """``start(config_text)`` -> (router, loop thread, control socket path): a router with a
    control socket and an upgrade manager, running in a thread until the test ends."""
    import threading
    from nf.config import parse_string
    from nf.control import ControlServer
    from nf.router import Router
    from nf.upgrade.manager import UpgradeManager
    running = []

    def start(config):
        r = Router(parse_string(config))
        path = str(tmp_path / ("ctl%d.sock" % len(running)))
        ControlServer(r, path)
        UpgradeManager(r)
        r.initialize()
        t = threading.Thread(target=r.run, kwargs={"install_signals": False}, daemon=True)
        t.start()
        running.append((r, t))
        return r, t, path
    yield start
    for r, t in running:
        r.please_stop()
        t.join(5)
