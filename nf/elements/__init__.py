"""The element library.  Modules are grouped by what the elements touch:
``standard`` (counting, switching, declarations), ``ethernet``, ``ip``,
``classifier``, ``rewriter`` (the NAT), ``firewall``, ``devices`` (AF_PACKET
I/O) and ``sources`` (traffic sources and pcap files).

Importing this package loads no module: :mod:`nf.library` loads the ones a
configuration needs, or all of them, so that integration cost can be measured
the way Click and CLICK-UP pay it.
"""
