"""The element the CLICK-UP demo's upgrade inserts into the firewall: Log."""

import sys

from nf.element import Arg, Element, read_handler


class Log(Element):
    """Log([LABEL, KEYWORDS])

    Passes packets unchanged and writes one line to stderr for every EVERY
    packets: the label, the packet count and the byte count so far.
    """
    CODE_VERSION = 1
    ARGS = (Arg("LABEL", "word", "log", positional=True, doc="prefix of each line"),
            Arg("EVERY", "uint", 1000, doc="log once per this many packets"))

    def configure(self):
        if self.every < 1:
            raise ValueError("keyword EVERY: expected at least 1")
        self.count = self.bytes = 0

    def push(self, port, batch):
        before = self.count // self.every
        self.count += len(batch)
        self.bytes += sum(len(p.buf) - p.off for p in batch)
        if self.count // self.every != before:
            print("%s: %d packets, %d bytes" % (self.label, self.count, self.bytes),
                  file=sys.stderr)
        self._out[0](batch)

    @read_handler("count", "packets seen")
    def _h_count(self):
        return str(self.count)
