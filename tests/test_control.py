"""The control socket (Click's ControlSocket protocol) and `clickup nf` commands.

No root: the router runs an in-memory source, not devices."""

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from nf.config import parse_string
from nf.control import GREETING, ControlClient, ControlError, ControlServer
from nf.router import Router

CONFIG = """
src :: InfiniteSource(LIMIT 10, BURST 5);
c :: Counter;
src -> c -> Discard;
"""


@pytest.fixture
def running(tmp_path):
    r = Router(parse_string(CONFIG))
    path = str(tmp_path / "ctl.sock")
    ControlServer(r, path)
    r.initialize()
    t = threading.Thread(target=r.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    yield r, path
    r.please_stop()
    t.join(5)
    assert not t.is_alive()


def _wait_count(client, n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.read("c.count") == str(n):
            return True
        time.sleep(0.01)
    return False


def test_read_write_and_check(running):
    r, path = running
    with ControlClient(path) as c:
        assert _wait_count(c, 10)
        assert c.read("c.class") == "Counter"
        c.write("c.reset")
        assert c.read("c.count") == "0"
        assert c.check("c.count", "r") is True
        assert c.check("c.nonesuch", "r") is False
        assert c.check("nobody.count", "r") is False
        assert "c\n" in c.read("list") + "\n"
        assert "Counter" in c.read("config")


def test_socket_mode_is_0600(running):
    _, path = running
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_raw_protocol_codes(running):
    _, path = running
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rb")
    assert f.readline().decode().strip() == GREETING
    s.sendall(b"READ c.class\r\n")
    assert f.readline().startswith(b"200 ")
    assert f.readline() == b"DATA 7\r\n"
    assert f.read(7) == b"Counter"
    s.sendall(b"READ nobody.count\r\n")
    assert f.readline().startswith(b"510 ")
    s.sendall(b"READ c.nonesuch\r\n")
    assert f.readline().startswith(b"511 ")
    s.sendall(b"FROB x\r\n")
    assert f.readline().startswith(b"501 ")
    s.sendall(b"WRITEDATA c.reset 0\r\n")
    assert f.readline().startswith(b"200 ")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"200 ")
    s.close()


def test_handler_error_is_520(running):
    _, path = running
    with ControlClient(path) as c:
        with pytest.raises(ControlError) as ei:
            c.write("src.limit", "lots")
        assert ei.value.code == 520


def test_write_stop_ends_loop(tmp_path):
    r = Router(parse_string(CONFIG))
    path = str(tmp_path / "s.sock")
    ControlServer(r, path)
    t = threading.Thread(target=r.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    with ControlClient(path) as c:
        c.write("stop")
    t.join(5)
    assert not t.is_alive()
    assert not os.path.exists(path), "the socket file is removed when the router stops"


def _clickup(*args, **kw):
    return subprocess.run([sys.executable, "-m", "experiments.cli"] + list(args),
                          capture_output=True, text=True, timeout=30, **kw)


def test_cli_run_read_write_and_sigterm(tmp_path):
    cfg = tmp_path / "c.click"
    cfg.write_text(CONFIG.replace("LIMIT 10", "LIMIT $n"))
    sock = str(tmp_path / "nf.sock")
    p = subprocess.Popen([sys.executable, "-m", "experiments.cli", "nf", "run", str(cfg),
                          "-d", "n=7", "--control", sock], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        out = ""
        while time.time() < deadline:
            out = _clickup("nf", "read", sock, "c.count").stdout
            if out == "7":
                break
            time.sleep(0.05)
        assert out == "7"
        assert _clickup("nf", "write", sock, "c.reset").returncode == 0
        assert _clickup("nf", "read", sock, "c.count").stdout == "0"
        bad = _clickup("nf", "read", sock, "nobody.count")
        assert bad.returncode == 1 and "510" in bad.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    assert p.returncode == 0
    assert not os.path.exists(sock)


def test_cli_run_reports_config_errors_with_location(tmp_path):
    cfg = tmp_path / "bad.click"
    cfg.write_text("a :: Counter;\na -> Nonesuch;\n")
    r = _clickup("nf", "run", str(cfg))
    assert r.returncode == 1
    assert "bad.click:2:" in r.stderr and "Nonesuch" in r.stderr


def test_cli_read_without_socket_says_so(tmp_path):
    r = _clickup("nf", "read", str(tmp_path / "none.sock"), "c.count")
    assert r.returncode != 0 and "no control socket" in r.stderr


def test_cli_run_names_element_and_line_when_a_device_is_missing(tmp_path):
    cfg = tmp_path / "dev.click"
    cfg.write_text("// a device that does not exist\nFromDevice(nonesuch9) -> Discard;\n")
    r = _clickup("nf", "run", str(cfg))
    assert r.returncode == 1
    assert "dev.click:2:" in r.stderr and "nonesuch9" in r.stderr


def test_cli_doc_prints_fixed_form():
    r = _clickup("nf", "doc", "IPRewriter")
    assert r.returncode == 0
    for part in ("IPRewriter(", "Keywords:", "CAPACITY", "Handlers:", "table_size"):
        assert part in r.stdout
    r = _clickup("nf", "doc", "Nonesuch")
    assert r.returncode == 1 and "Nonesuch" in r.stderr


def test_cli_check_prints_graph_or_errors(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = _clickup("nf", "check", os.path.join(root, "configs", "nat.click"))
    assert r.returncode == 0 and "rw :: IPRewriter(" in r.stdout
    bad = tmp_path / "b.click"
    bad.write_text("a :: Counter\n  -> ;\n")
    r = _clickup("nf", "check", str(bad))
    assert r.returncode == 1 and "b.click:2:" in r.stderr


def test_cli_check_with_a_packages_element_code():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pkg = os.path.join(root, "upgrades", "firewall-log")
    cfg = os.path.join(pkg, "firewall.click")
    r = _clickup("nf", "check", cfg)
    assert r.returncode == 1 and "unknown element class 'Log'" in r.stderr
    r = _clickup("nf", "check", cfg, "--elements", os.path.join(pkg, "elements"))
    assert r.returncode == 0 and "log :: Log(" in r.stdout
