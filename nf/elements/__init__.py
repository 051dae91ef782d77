"""The element library.  Importing this package registers every element class.

Modules are grouped by what the elements touch: ``standard`` (counting,
switching, declarations), ``ethernet``, ``ip``, ``classifier``, ``rewriter``
(the NAT), ``firewall``, ``devices`` (AF_PACKET I/O) and ``sources`` (traffic
sources and pcap files).
"""

import importlib

MODULES = ("standard", "ethernet", "ip", "classifier", "rewriter", "firewall", "devices",
           "sources")

for _m in MODULES:
    importlib.import_module("%s.%s" % (__name__, _m))
