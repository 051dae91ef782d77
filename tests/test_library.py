"""The element library as a whole: every class the issue names exists, and each
carries its documentation in the fixed form (signature, summary, keywords,
handlers) next to its code."""

import re

import pytest

from nf.element import ELEMENTS, lookup

REQUIRED = """FromDevice ToDevice Queue Classifier IPClassifier IPFilter Strip Unstrip EtherEncap
EtherRewrite ARPResponder ARPQuerier CheckIPHeader CheckTCPHeader CheckUDPHeader DecIPTTL
GetIPAddress SetIPChecksum SetTCPChecksum SetUDPChecksum IPRewriter TCPRewriter UDPRewriter
IPRewriterPatterns ICMPPingRewriter Counter AverageCounter Tee Discard Print IPPrint Paint
CheckPaint Null Switch StaticSwitch RoundRobinSwitch HashSwitch ToDump FromDump InfiniteSource
RatedSource AddressInfo ScheduleInfo StatefulFirewall""".split()


@pytest.mark.parametrize("name", REQUIRED)
def test_class_exists(name):
    assert lookup(name) is not None, "element class %s is missing" % name


def _all():
    from nf import library
    library.load_all()
    return sorted(ELEMENTS.items())


@pytest.mark.parametrize("name,cls", _all())
def test_documentation_in_fixed_form(name, cls):
    sig = cls.signature()
    assert re.match(r"^%s(\(.*\))?$" % re.escape(name), sig), \
        "%s: first docstring line must be its Click signature, got %r" % (name, sig)
    assert cls.summary(), "%s has no summary" % name
    for a in cls.ARGS:
        assert a.doc, "%s keyword %s has no documentation" % (name, a.name)
    for h, (_, doc) in list(cls._read_handlers.items()) + list(cls._write_handlers.items()):
        assert doc, "%s handler %s has no documentation" % (name, h)
    text = cls.doc()
    for section in ("Keywords:", "Handlers:", "Ports:"):
        assert section in text


@pytest.mark.parametrize("name,cls", [(n, c) for n, c in _all() if c.STATE_VERSION is not None])
def test_stateful_elements_export_and_import(name, cls):
    assert cls.export_state is not lookup("Null").export_state, \
        "%s declares a state version but does not export state" % name
    assert cls.import_state is not lookup("Null").import_state
