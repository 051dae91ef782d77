"""Drive one element with in-memory packets, for golden packet tests.

    e = make("DecIPTTL", "")
    out = run(e, [frame_bytes], port=0)   # -> list of output lists of bytes
"""

from .args import AddressTable
from .element import lookup
from .packet import Packet

__all__ = ["make", "Sink", "attach", "run", "packets", "load_module_file"]


class Sink:
    """Collects what an output pushes."""

    def __init__(self):
        self.packets = []

    def push(self, port, batch):
        self.packets.extend(batch)

    @property
    def frames(self):
        return [p.data for p in self.packets]


def make(cls_name, config="", name=None, addresses=None, noutputs=None, ninputs=None,
         router=None):
    """Build an element by class name, attach a Sink to each output, initialize it."""
    cls = lookup(cls_name)
    if cls is None:
        raise LookupError("no element class %s" % cls_name)
    e = cls(name or cls_name.lower(), config, router=router,
            addresses=addresses if addresses is not None else AddressTable())
    attach(e, noutputs, ninputs)
    e.initialize()
    return e


def attach(e, noutputs=None, ninputs=None):
    from .element import parse_port_spec
    (imin, imax), (omin, omax) = parse_port_spec(e.port_count())
    e.ninputs = ninputs if ninputs is not None else (imin if imin else (imax or 1))
    e.noutputs = noutputs if noutputs is not None else (omax if omax is not None else max(omin, 1))
    e.sinks = [Sink() for _ in range(e.noutputs)]
    for i, s in enumerate(e.sinks):
        e._connect_output(i, s, 0)
    return e


def packets(frames, off=0):
    return [Packet(bytearray(f), off) for f in frames]


def run(e, frames, port=0, off=0):
    """Push ``frames`` (bytes) into input ``port``; return each output's frames (bytes)
    pushed during this call."""
    before = [len(s.packets) for s in e.sinks]
    batch = packets(frames, off)
    if batch:
        e.push(port, batch)
    return [[p.data for p in s.packets[n:]] for s, n in zip(e.sinks, before)]


def load_module_file(path, module_name):
    """(element classes it defines, module) for the element code at ``path`` -- e.g. an
    upgrade package's -- compiled from source with no bytecode written beside it (it would
    not be in the package's manifest) and its classes kept out of the library's registry."""
    import importlib.util
    import sys
    from .element import registering_into
    classes = {}
    spec = importlib.util.spec_from_file_location(module_name, str(path))
    module = importlib.util.module_from_spec(spec)
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        with registering_into(classes):
            spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return classes, module
