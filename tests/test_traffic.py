"""The download client, the file server and the wget/curl wrapper, on loopback (no root).

Faults come from the server's test modes: the first connection breaks after some bytes with
an RST (SO_LINGER 0), a stall or an early EOF; the client must start again from byte 0 and
finish, and its trace must say what happened in order.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import struct
import sys
import threading
import time

import pytest

from experiments import traffic
from experiments.traffic import download, run_tool, serve, upload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 3_000_000                 # spans nearly three content periods
FAST = dict(idle_timeout=0.3, connect_timeout=2.0, give_up=20.0, tick=0.02)


@pytest.fixture
def server():
    """serve(**kw) on 127.0.0.1, closed after the test."""
    started = []

    def start(size=SIZE, **kw):
        s = serve(size, 0, "127.0.0.1", **kw)
        started.append(s)
        return s, "http://127.0.0.1:%d/file" % s.port
    yield start
    for s in started:
        s.close()


def _trace(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _events(recs):
    return [r["ev"] for r in recs if r["ev"] not in ("sample", "reached")]


def test_full_download_is_verified_and_traced(server, tmp_path):
    srv, url = server(seed=7)
    out = tmp_path / "t.jsonl"
    res = download(url, str(out), **FAST)
    assert (res["ok"], res["verified"], res["restarts"]) == (True, True, 0)
    assert res["bytes"] == res["size"] == res["received_total"] == SIZE
    recs = _trace(out)
    assert _events(recs) == ["connect", "first_byte", "done", "summary"]
    assert all("t" in r and "wall" in r for r in recs)
    assert recs[-1]["ok"] is True
    assert srv.connections == [(SIZE, None)]


def test_reset_midway_restarts_from_zero(server, tmp_path):
    srv, url = server(fail_after=1_000_000, fail_mode="reset")
    out = tmp_path / "t.jsonl"
    res = download(url, str(out), **FAST)
    assert (res["ok"], res["verified"], res["restarts"], res["bytes"]) == (True, True, 1, SIZE)
    assert res["received_total"] > SIZE          # the first attempt's bytes were thrown away
    recs = _trace(out)
    assert _events(recs) == ["connect", "first_byte", "reset", "restart", "connect",
                             "first_byte", "done", "summary"]
    second = next(r for r in recs if r["ev"] == "connect" and r["attempt"] == 2)
    assert second["bytes"] == 0 and second["total"] > 0
    assert [f for _, f in srv.connections] == ["reset", None]


@pytest.mark.parametrize("mode,event", [("stall", "timeout"), ("eof", "eof_early")])
def test_stall_and_early_eof_restart(server, tmp_path, mode, event):
    srv, url = server(fail_after=500_000, fail_mode=mode)
    out = tmp_path / "t.jsonl"
    res = download(url, str(out), **FAST)
    assert (res["ok"], res["verified"], res["restarts"]) == (True, True, 1)
    evs = _events(_trace(out))
    assert evs[evs.index(event) + 1] == "restart"
    assert evs[-2:] == ["done", "summary"]


def test_progress_samples_show_bytes_per_attempt(server, tmp_path):
    srv, url = server(size=400_000, rate=1_000_000, fail_after=150_000, fail_mode="stall")
    out = tmp_path / "t.jsonl"
    res = download(url, str(out), **FAST)
    assert res["ok"]
    samples = [r for r in _trace(out) if r["ev"] == "sample"]
    assert samples, "a paced download over several ticks must be sampled"
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
    assert max(s["bytes"] for s in samples if s["attempt"] == 1) <= 150_000
    assert max(s["total"] for s in samples) > 150_000
    # pacing: 400 kB at 1 MB/s cannot finish in less than 0.4 s
    assert res["transfer_s"] >= 0.35


def test_give_up_after_max_restarts(server, tmp_path):
    srv, url = server(fail_after=100_000, fail_mode="reset", fail_count=100)
    out = tmp_path / "t.jsonl"
    res = download(url, str(out), max_restarts=2, **FAST)
    assert (res["ok"], res["verified"], res["restarts"], res["reason"]) == \
        (False, False, 2, "max_restarts")
    assert _events(_trace(out))[-2:] == ["give_up", "summary"]
    assert len(srv.connections) == 3


def test_give_up_after_seconds(server, tmp_path):
    srv, url = server(fail_after=1000, fail_mode="stall", fail_count=100)
    res = download(url, str(tmp_path / "t.jsonl"), **dict(FAST, give_up=0.6))
    assert (res["ok"], res["reason"]) == (False, "give_up")
    assert res["restarts"] >= 1


def test_corrupted_body_is_not_verified(tmp_path):
    """A server that announces seed 0 but sends other bytes: the download completes, unverified."""
    body = bytearray(traffic.expected_body(0, 100_000))
    body[54_321] ^= 0xFF
    lsock = socket.create_server(("127.0.0.1", 0))

    def one():
        c, _ = lsock.accept()
        with c:
            c.recv(4096)
            c.sendall(traffic._response(200, "OK", len(body), 0) + body)
    t = threading.Thread(target=one)
    t.start()
    out = tmp_path / "t.jsonl"
    res = download("http://127.0.0.1:%d/file" % lsock.getsockname()[1], str(out), **FAST)
    t.join()
    lsock.close()
    assert (res["ok"], res["verified"], res["bytes"]) == (True, False, 100_000)
    assert [r["offset"] for r in _trace(out) if r["ev"] == "mismatch"] == [54_321]


def test_unknown_path_is_fatal_and_refused_port_gives_up(server, tmp_path):
    srv, url = server()
    res = download(url.replace("/file", "/nope"), str(tmp_path / "a.jsonl"), **FAST)
    assert (res["ok"], res["reason"], res["restarts"]) == (False, "http_error", 0)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]                   # bound, not listening: connections refused
    res = download("http://127.0.0.1:%d/file" % port, str(tmp_path / "b.jsonl"),
                   retry_wait=0.1, **dict(FAST, give_up=0.5))
    s.close()
    assert (res["ok"], res["reason"], res["restarts"]) == (False, "give_up", 0)
    assert res["connect_errors"] >= 1


def test_parallel_downloads(server):
    srv, url = server(size=500_000)
    results = [None] * 20

    def get(i):
        results[i] = download(url + "/%d" % i, None, **FAST)
    threads = [threading.Thread(target=get, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["ok"] and r["verified"] and r["restarts"] == 0 for r in results)
    assert len(srv.connections) == 20


def test_command_line_serve_get_and_sigterm(tmp_path):
    py = [sys.executable, "-m", "experiments.traffic"]
    srv = subprocess.Popen(py + ["serve", "--port", "0", "--host", "127.0.0.1", "--size", "1.2M",
                                 "--fail-after", "200k"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(srv.stdout.readline())
        assert ready["ready"] and ready["size"] == 1_200_000
        out = tmp_path / "t.jsonl"
        get = subprocess.run(py + ["get", "http://127.0.0.1:%d/file" % ready["port"],
                                   "--out", str(out), "--idle-timeout", "1",
                                   "--announce", "50,90"],
                             cwd=ROOT, capture_output=True, text=True, timeout=20)
        lines = [json.loads(x) for x in get.stdout.splitlines()]
        assert get.returncode == 0
        assert [x.get("reached") for x in lines[:-1]] == [50, 90]
        assert (lines[-1]["ok"], lines[-1]["verified"], lines[-1]["restarts"]) == (True, True, 1)
        assert _trace(out)[-1]["ev"] == "summary"
        srv.send_signal(signal.SIGTERM)
        assert srv.wait(timeout=5) == 0
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


# ----------------------------------------------------------------------------- uploads

def test_full_upload_is_verified_by_the_server_and_traced(server, tmp_path):
    srv, url = server(size=0)           # the served file's size plays no part in a PUT
    out = tmp_path / "u.jsonl"
    res = upload(url, SIZE, str(out), seed=11, announce=(50,), **FAST)
    assert (res["ok"], res["verified"], res["restarts"], res["bytes"]) == (True, True, 0, SIZE)
    assert srv.uploads == [(SIZE, True, None)]
    recs = _trace(out)
    assert _events(recs) == ["connect", "first_byte", "done", "summary"]
    done = next(r for r in recs if r["ev"] == "done")
    assert done["server_received"] == str(SIZE)
    reached = [r for r in recs if r["ev"] == "reached"]
    assert [r["pct"] for r in reached] == [50] and reached[0]["bytes"] >= SIZE // 2


def test_upload_progress_is_what_the_server_acknowledged(tmp_path):
    """A server that stops reading: the client's progress may not pass what the server's
    kernel accepted (read + still queued), though the client keeps sending into its own
    socket's queue (megabytes on loopback)."""
    import fcntl
    import termios
    lsock = socket.create_server(("127.0.0.1", 0))
    accepted = {}

    def stalling():
        c, _ = lsock.accept()
        with c:
            head, rest = traffic._read_head(c)
            got = len(rest)
            while got < 200_000:
                got += len(c.recv(65536))
            time.sleep(0.4)                         # the client's queue fills meanwhile
            queued = bytearray(4)
            fcntl.ioctl(c.fileno(), termios.FIONREAD, queued)
            accepted["body"] = got + struct.unpack("i", queued)[0]
            time.sleep(0.6)                         # past the client's idle timeout
    t = threading.Thread(target=stalling)
    t.start()
    out = tmp_path / "u.jsonl"
    res = upload("http://127.0.0.1:%d/file" % lsock.getsockname()[1], 30_000_000, str(out),
                 max_restarts=0, **dict(FAST, idle_timeout=0.5))
    t.join()
    lsock.close()
    assert (res["ok"], res["reason"]) == (False, "max_restarts")
    progress = max(r["bytes"] for r in _trace(out) if r["ev"] == "sample")
    assert 200_000 <= progress <= accepted["body"]
    evs = _events(_trace(out))
    assert evs[evs.index("timeout") + 1] == "give_up"


@pytest.mark.parametrize("mode", ["reset", "eof"])
def test_upload_broken_by_the_server_restarts_from_zero(server, tmp_path, mode):
    srv, url = server(size=0, fail_after=1_000_000, fail_mode=mode)
    out = tmp_path / "u.jsonl"
    res = upload(url, SIZE, str(out), seed=3, **FAST)
    assert (res["ok"], res["verified"], res["restarts"], res["bytes"]) == (True, True, 1, SIZE)
    assert [(n, f) for n, _, f in srv.uploads] == [(1_000_000, mode), (SIZE, None)]
    evs = _events(_trace(out))
    # An RST or a broken pipe; after a FIN, also an EOF where the answer should be, when
    # the whole upload already fitted in the socket buffers.
    assert evs[evs.index("restart") - 1] in ({"reset"} if mode == "reset"
                                             else {"reset", "eof_early"})
    assert evs[-2:] == ["done", "summary"]


def test_upload_of_other_content_is_not_verified(server, tmp_path):
    """The client claims seed 1 but the server checks against what it announces: a PUT
    whose bytes do not match its X-Clickup-Seed is received in full and marked so."""
    srv, url = server(size=0)
    head = ("PUT /file HTTP/1.0\r\nContent-Length: 1000\r\nX-Clickup-Seed: 1\r\n\r\n")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        c.sendall(head.encode() + bytes(1000))
        answer = c.recv(4096).decode()
    assert answer.startswith("HTTP/1.0 200")
    assert "X-Clickup-Verified: no" in answer and "X-Clickup-Received: 1000" in answer
    assert srv.uploads == [(1000, False, None)]


def test_upload_without_length_is_refused(server, tmp_path):
    srv, url = server(size=0)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        c.sendall(b"PUT /file HTTP/1.0\r\n\r\n")
        answer = c.recv(4096).decode()
    assert answer.startswith("HTTP/1.0 400") and "Content-Length" in answer
    assert srv.uploads == []


def test_command_line_put(tmp_path):
    py = [sys.executable, "-m", "experiments.traffic"]
    srv = subprocess.Popen(py + ["serve", "--port", "0", "--host", "127.0.0.1", "--size", "0"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(srv.stdout.readline())["port"]
        put = subprocess.run(py + ["put", "http://127.0.0.1:%d/file" % port, "--size", "2M",
                                   "--seed", "9", "--out", str(tmp_path / "u.jsonl")],
                             cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert put.returncode == 0, put.stderr
        res = json.loads(put.stdout.splitlines()[-1])
        assert (res["ok"], res["verified"], res["bytes"]) == (True, True, 2_000_000)
        bad = subprocess.run(py + ["put", "http://127.0.0.1:%d/file" % port, "--out", "x"],
                             cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert bad.returncode == 2 and "--size" in bad.stderr
    finally:
        srv.terminate()
        srv.wait(5)


@pytest.mark.parametrize("tool", ["wget", "curl"])
def test_real_tool_downloads_and_restarts_after_reset(server, tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed" % tool)
    srv, url = server(fail_after=400_000, fail_mode="reset")
    out = str(tmp_path / "t.jsonl")
    res = run_tool(tool, url, out, tries=3, idle_timeout=2.0, connect_timeout=2.0, give_up=20)
    assert (res["ok"], res["restarts"], res["bytes"], res["exit"]) == (True, 1, SIZE, 0)
    evs = _events(_trace(out))
    assert evs.index("reset") < evs.index("restart") < evs.index("done")
    assert os.path.getsize(traffic.raw_log_path(out, tool)) > 0
    # the server ignored any Range: the retry fetched the whole file again
    assert [sent for sent, _ in srv.connections][-1] == SIZE


@pytest.mark.parametrize("tool", ["wget", "curl"])
def test_real_tool_reports_failure(server, tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed" % tool)
    srv, url = server(fail_after=100_000, fail_mode="eof", fail_count=100)
    res = run_tool(tool, url, str(tmp_path / "t.jsonl"), tries=2, idle_timeout=2.0,
                   connect_timeout=2.0, give_up=20)
    assert (res["ok"], res["restarts"]) == (False, 1)
    assert res["exit"] != 0


def test_parse_bytes():
    assert [traffic.parse_bytes(x) for x in ("1200000", "1.2M", "64k", "2G")] == \
        [1_200_000, 1_200_000, 64_000, 2_000_000_000]
    with pytest.raises(ValueError, match="byte count"):
        traffic.parse_bytes("lots")


def test_real_tool_counts_failed_connects_apart_and_gives_up(tmp_path):
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))                    # bound, not listening: connections refused
    out = str(tmp_path / "t.jsonl")
    res = run_tool("wget", "http://127.0.0.1:%d/file" % s.getsockname()[1], out, tries=2,
                   connect_timeout=1.0)
    s.close()
    assert (res["ok"], res["restarts"], res["connect_errors"]) == (False, 0, 1)
    assert "connect_error" in _events(_trace(out))


def test_real_tool_is_stopped_at_give_up(server, tmp_path):
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed")
    srv, url = server(fail_after=1000, fail_mode="stall")
    res = run_tool("wget", url, str(tmp_path / "t.jsonl"), tries=2, idle_timeout=60,
                   give_up=0.5)
    assert (res["ok"], res["reason"]) == (False, "give_up")
