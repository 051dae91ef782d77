"""In-place upgrades (clickup, hotswap) of a running router, driven through its
control socket, as a user would: no root, traffic from an in-memory source."""

import json
import textwrap
import time

import pytest

from nf.control import ControlClient

OLD = """
src :: RatedSource(RATE 2000);
c :: Counter;
src -> c -> sink :: Discard;
"""

TAGGER = '''
from nf.element import Element, Arg

class Tagger(Element):
    """Tagger([COLOR])

    Paints packets (a stand-in for a new module)."""
    CODE_VERSION = 1
    ARGS = (Arg("COLOR", "uint", 7, positional=True, doc="paint colour"),)

    def push(self, port, batch):
        for p in batch:
            p.paint = self.color
        self._out[0](batch)
'''

BROKEN_INIT = '''
from nf.element import Element

class Tagger(Element):
    """Tagger()

    Fails to initialize."""
    def initialize(self):
        raise ValueError("cannot start: deliberately broken")
    def push(self, port, batch):
        self._out[0](batch)
'''

BROKEN_PUSH = '''
from nf.element import Element

class Tagger(Element):
    """Tagger()

    Raises on its first packet."""
    def push(self, port, batch):
        raise RuntimeError("deliberately broken on the packet path")
'''


def package(tmp_path, code=TAGGER, config=None, name="pkg"):
    d = tmp_path / name
    (d / "elements").mkdir(parents=True)
    (d / "new.click").write_text(config or """
src :: RatedSource(RATE 2000);
c :: Counter;
src -> c -> t :: Tagger(3) -> sink :: Discard;
""")
    (d / "elements" / "tagger.py").write_text(textwrap.dedent(code))
    from nf.upgrade.manifest import write_manifest
    write_manifest(str(d))
    return d


@pytest.fixture
def nf(control_router):
    r, _, path = control_router(OLD)
    client = ControlClient(path)
    yield r, client
    client.close()


def upgrade(client, timeout=15, **req):
    client.write("upgrade", json.dumps(req))
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.read("upgrade_status")
        if status in ("done", "refused", "aborted", "rolled-back"):
            return status, json.loads(client.read("upgrade_report"))
        time.sleep(0.02)
    raise AssertionError("upgrade did not finish: %s" % client.read("upgrade_status"))


def count(client):
    return int(client.read("c.count"))


def test_clickup_integrates_only_the_new_module_and_keeps_unchanged_elements(nf, tmp_path):
    r, c = nf
    counter = r.elements["c"]
    time.sleep(0.2)
    before = count(c)
    assert before > 0
    d = package(tmp_path)
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="clickup")
    assert status == "done", rec
    assert r.elements["c"] is counter, "an unchanged element keeps running untouched"
    assert count(c) >= before, "its count was not reset"
    assert rec["modules_integrated"] == ["package:tagger"]
    assert rec["elements"]["added"] == ["t"] and rec["elements"]["unchanged"] == 3
    for k in ("T1_ms", "T2_ms", "T3_ms", "T4_ms"):
        assert rec[k] is not None and rec[k] >= 0
    assert abs(rec["T4_ms"] - (rec["T1_ms"] + rec["T2_ms"] + rec["T3_ms"])) < 0.01
    assert rec["T2_basis"].startswith("first packet")
    assert c.read("t.class") == "Tagger"


def test_injected_delay_lengthens_staging_and_is_labelled(nf, tmp_path):
    r, c = nf
    d = package(tmp_path)
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="clickup", delay=0.5)
    assert status == "done"
    assert rec["T1_ms"] >= 500
    assert rec["injected_delay_s"] == 0.5 and "injected" in rec["injected_delay_note"]
    assert rec["T2_ms"] < 500, "for clickup the delay is spent while the old graph forwards"


def test_hotswap_rebuilds_every_element(nf, tmp_path):
    r, c = nf
    counter = r.elements["c"]
    time.sleep(0.2)
    before = count(c)
    d = package(tmp_path)
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="hotswap")
    assert status == "done", rec
    assert r.elements["c"] is not counter
    assert count(c) >= before, "Counter's take_state keeps its count across a hot-swap"


def test_abort_during_staging_changes_nothing(nf, tmp_path):
    r, c = nf
    graph, elements = r.graph, dict(r.elements)
    d = package(tmp_path)
    c.write("upgrade", json.dumps({"to": str(d / "new.click"), "elements": str(d / "elements"),
                                   "strategy": "clickup", "delay": 10}))
    time.sleep(0.3)
    assert c.read("upgrade_status") == "staging"
    c.write("upgrade_abort")
    deadline = time.time() + 5
    while c.read("upgrade_status") == "staging" and time.time() < deadline:
        time.sleep(0.02)
    assert c.read("upgrade_status") == "aborted"
    assert r.graph is graph and r.elements == elements


@pytest.mark.parametrize("code,why", [(BROKEN_INIT, "deliberately broken"),
                                      (BROKEN_PUSH, "deliberately broken on the packet path")])
def test_run_phase_failure_rolls_back_and_keeps_forwarding(nf, tmp_path, code, why):
    r, c = nf
    counter = r.elements["c"]
    graph = r.graph
    d = package(tmp_path, code=code, config="""
src :: RatedSource(RATE 2000);
c :: Counter;
src -> c -> t :: Tagger -> sink :: Discard;
""")
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="clickup")
    assert status == "rolled-back", rec
    assert why in rec["reason"]
    assert r.graph is graph and r.elements["c"] is counter
    n = count(c)
    time.sleep(0.2)
    assert count(c) > n, "the old graph keeps forwarding"
    assert int(c.read("sink.count")) > 0


@pytest.mark.parametrize("mutate,expect", [
    ("tamper", "manifest check failed"),
    ("parse", "does not parse"),
    ("class", "unknown element class"),
])
def test_refusals_leave_the_nf_untouched(nf, tmp_path, mutate, expect):
    r, c = nf
    graph = r.graph
    d = package(tmp_path)
    cfg = d / "new.click"
    if mutate == "tamper":
        cfg.write_text(cfg.read_text() + "// changed after the manifest was made\n")
    else:
        cfg.write_text("src :: RatedSource(RATE 2000); src -> Nonesuch -> Discard;"
                       if mutate == "class" else "src :: RatedSource(; ")
        from nf.upgrade.manifest import write_manifest
        write_manifest(str(d))
    status, rec = upgrade(c, to=str(cfg), elements=str(d / "elements"), strategy="clickup")
    assert status == "refused"
    assert expect in rec["reason"], rec["reason"]
    assert r.graph is graph


def test_unknown_strategy_and_bad_request_are_refused_by_the_handler(nf):
    from nf.control import ControlError
    r, c = nf
    with pytest.raises(ControlError) as ei:
        c.write("upgrade", json.dumps({"to": "x.click", "strategy": "teleport"}))
    assert "unknown strategy" in str(ei.value)
    with pytest.raises(ControlError):
        c.write("upgrade", "strategy=clickup")


COUNTER_V2 = '''
from nf.elements.standard import Counter as _Counter

def _broken(data):
    raise ValueError("deliberately failing migration")

class Counter(_Counter):
    """Counter([KEYWORDS])

    A Counter whose state version 2 cannot be reached."""
    CODE_VERSION = 2
    STATE_VERSION = 2
    MIGRATIONS = {1: _broken}
'''

COUNTER_V2_OK = COUNTER_V2.replace('raise ValueError("deliberately failing migration")',
                                   'return dict(data, migrated=True)')


def test_failed_migration_rolls_back_with_state(nf, tmp_path):
    r, c = nf
    counter = r.elements["c"]
    time.sleep(0.2)
    d = package(tmp_path, code=COUNTER_V2, config=OLD)
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="clickup")
    assert status == "rolled-back", rec
    assert "deliberately failing migration" in rec["reason"]
    assert r.elements["c"] is counter
    n = count(c)
    time.sleep(0.2)
    assert count(c) > n, "the old graph keeps forwarding, with its count"


def test_migrated_state_carries_the_count(nf, tmp_path):
    r, c = nf
    time.sleep(0.3)
    before = count(c)
    d = package(tmp_path, code=COUNTER_V2_OK, config=OLD)
    status, rec = upgrade(c, to=str(d / "new.click"), elements=str(d / "elements"),
                          strategy="clickup")
    assert status == "done", rec
    assert rec["elements"]["changed"] == ["c"]
    assert type(r.elements["c"]).STATE_VERSION == 2
    assert count(c) >= before, "v1 counts migrated to v2, plus what arrived meanwhile"
