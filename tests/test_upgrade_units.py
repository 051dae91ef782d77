"""Pieces of the upgrade machinery on their own: the graph diff, the state-carry
prerequisites, request parsing, and the constant-time hand-over of big tables."""

import pytest

from nf.config import parse_string
from nf.element import Element, lookup, registering_into
from nf.testing import make
from nf.upgrade.diff import diff
from nf.upgrade.manager import parse_request
from nf.upgrade.package import Package, Refused


def _elements(text):
    from nf.config import build_elements
    els, errors = build_elements(parse_string(text))
    assert not errors
    return els


OLD = "a :: Counter; b :: Null; a -> b -> d :: Discard;"


def test_diff_sorts_elements_into_unchanged_changed_added_removed():
    old = _elements(OLD)
    new = parse_string("a :: Counter; b :: Paint(3); a -> b -> n :: Null -> d :: Discard;")
    d = diff(old, new, lookup)
    assert sorted(d.unchanged) == ["a", "d"]
    assert d.changed == ["b"] and d.added == ["n"] and d.removed == []


def test_diff_counts_a_new_code_version_as_changed():
    old = _elements(OLD)
    reg = {}
    with registering_into(reg):
        class Counter(lookup("Counter")):
            """Counter()

            A newer Counter."""
            CODE_VERSION = 2
    d = diff(old, parse_string(OLD), lambda c: reg.get(c) or lookup(c))
    assert d.changed == ["a"] and sorted(d.unchanged) == ["b", "d"]


def test_changed_addressinfo_marks_everything_changed():
    old = _elements("AddressInfo(me 10.0.0.1); a :: Counter; a -> Discard;")
    d = diff(old, parse_string("AddressInfo(me 10.0.0.2); a :: Counter; a -> Discard;"), lookup)
    assert d.unchanged == []


def _cls(version, migrations=None):
    reg = {}
    with registering_into(reg):
        class Stateful(Element):
            """Stateful()

            Keeps state."""
            STATE_VERSION = version
            MIGRATIONS = migrations or {}
    return reg["Stateful"]


def test_state_carry_needs_a_migration_path():
    old = {"s": _cls(1)("s")}
    Package.check_state_carry(old, {"s": _cls(1)})
    Package.check_state_carry(old, {"s": _cls(3, {1: dict, 2: dict})})
    with pytest.raises(Refused, match="no migration from state version 2"):
        Package.check_state_carry(old, {"s": _cls(3, {1: dict})})
    with pytest.raises(Refused, match="cannot go back"):
        Package.check_state_carry({"s": _cls(2)("s")}, {"s": _cls(1)})


@pytest.mark.parametrize("text,err", [("strategy=clickup", "needs 'to'"),
                                      ("to=x delay=-1", "negative"),
                                      ("to=x delay=soon", "number"),
                                      ("{bad json", "JSON"), ("to", "key=value")])
def test_bad_requests_say_what_is_wrong(text, err):
    with pytest.raises(ValueError, match=err):
        parse_request(text)


def test_request_defaults():
    assert parse_request("to=n.click") == {"to": "n.click", "strategy": "clickup", "delay": 0.0}


def test_nat_table_moves_by_reference_when_the_version_is_unchanged():
    from nf import headers as H
    old = make("IPRewriter", "pattern 10.0.1.254 1024-65535 - - 0 1, drop")
    frames = [H.udp("10.0.0.1", "10.0.1.1", 2000 + i, 53, b"q") for i in range(500)]
    from nf.testing import run
    run(old, frames)
    new = make("IPRewriter", "pattern 10.0.1.254 1024-65535 - - 0 1, drop, CAPACITY 70000")
    assert new.adopt_state(old) == 500
    assert new._mappings is old._mappings, "no copy: the swap's pause does not grow"
    out = run(new, frames[:1])[0]
    assert out and out[0] == run(old, frames[:1])[0][0], "the same outside port"


def test_firewall_sessions_move_by_reference():
    from nf import headers as H
    from nf.testing import run
    old = make("StatefulFirewall")
    run(old, [H.udp("10.0.0.1", "10.0.1.1", 2000 + i, 53, b"q") for i in range(50)])
    new = make("StatefulFirewall", "UDP_TIMEOUT 60")
    assert new.adopt_state(old) == 50
    assert new.read("sessions") == "50"


def test_a_package_that_first_imports_a_library_module_leaves_its_classes_to_the_library():
    """A rollback starts the old version after the failed new one loaded its package; the
    package's code imported nf.elements.rewriter first, which must not have taken the
    library's IPRewriter with it (a fresh interpreter: nothing imported before)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys\n"
            "from nf.upgrade.package import Package\n"
            "assert 'nf.elements.rewriter' not in sys.modules\n"
            "p = Package('upgrades/nat-v2-broken/nat.click', 'upgrades/nat-v2-broken/elements')\n"
            "p.parse(); p.load_code()\n"
            "from nf.element import lookup\n"
            "import nf.elements.rewriter as lib\n"
            "assert p.classes['IPRewriter'] is not lib.IPRewriter\n"
            "assert lookup('IPRewriter') is lib.IPRewriter, lookup('IPRewriter')\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
