"""IPRewriter version 2, shipped in the upgrade package nat-v2: per-mapping traffic
counters and creation times.

The packet path is the library's: this class only turns on the library
rewriter's COUNT_TRAFFIC switch, so v1 and v2 translate packets identically and
v2 adds each translated packet, and its IP total length, to its mapping.

State version 2 is version 1's layout plus three fields per mapping: ``packets``
and ``bytes`` (integers) and ``age``, the seconds since the mapping was made.
An age travels instead of a time because the element clock is monotonic and
means nothing in another process.  ``migrate_v1_to_v2`` lifts v1 data: the
counters start at 0 (v1 did not count), and the age is estimated as the largest
idle time among the mapping's sessions -- the mapping existed before its least
recently used session's last packet, so that is the tightest bound v1 data
gives (a lower bound; 0 for a mapping without sessions).

The upgrade loader imports this module inside ``nf.element.registering_into``,
so the class replaces IPRewriter in the new graph only; the library's stays v1.
"""

import heapq

from nf.element import read_handler
from nf.elements.rewriter import IPRewriter as _LibraryIPRewriter

__all__ = ["IPRewriter", "migrate_v1_to_v2"]


def _v1_error(where, expected, got):
    return ValueError("IPRewriter state version 1%s: expected %s, got %r"
                      % (where, expected, got))


def _number(value):
    """A finite non-negative number (not a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value < float("inf") else None


def _lift_mapping(i, md):
    if not isinstance(md, dict):
        raise _v1_error(", mapping %d" % i, "a dict", md)
    sessions = md.get("sessions")
    if not isinstance(sessions, list):
        raise _v1_error(", mapping %d" % i, "a 'sessions' list", sessions)
    idles = []
    for j, sd in enumerate(sessions):
        idle = _number(sd.get("idle")) if isinstance(sd, dict) else None
        if idle is None:
            raise _v1_error(", mapping %d, session %d" % (i, j),
                            "a dict with a non-negative number 'idle'", sd)
        idles.append(idle)
    return dict(md, packets=0, bytes=0, age=max(idles, default=0.0))


def migrate_v1_to_v2(data):
    """IPRewriter state v1 -> v2: every mapping gains ``packets`` 0, ``bytes`` 0 and
    ``age``, its sessions' largest idle time.  The input is not modified; data that
    is not v1's layout raises ValueError saying what was expected where."""
    if not isinstance(data, dict) or not isinstance(data.get("mappings"), list):
        raise _v1_error("", "a dict with a 'mappings' list", data)
    lifted = dict(data)
    lifted["mappings"] = [_lift_mapping(i, md) for i, md in enumerate(data["mappings"])]
    return lifted


def _counter(md, field):
    value = md[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("%s: expected a non-negative integer, got %r" % (field, value))
    return value


class IPRewriter(_LibraryIPRewriter):
    """IPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Version 2 of the library's IPRewriter (same configuration, same translation;
    see its documentation): it also counts, per mapping, the packets and bytes
    (IP total length, both directions) it translated, and records when each
    mapping was made.  The mappings handler shows them; top lists the 10 mappings
    with the most bytes.  State version 2 adds 'packets', 'bytes' and 'age' to
    each mapping; state version 1 is migrated (counters 0, age estimated as the
    largest idle time of the mapping's sessions).
    """

    CODE_VERSION = 2
    STATE_VERSION = 2
    MIGRATIONS = {1: migrate_v1_to_v2}
    COUNT_TRAFFIC = True

    def _mapping_data(self, m, now, names):
        d = super()._mapping_data(m, now, names)
        d["packets"], d["bytes"] = m.packets, m.bytes
        d["age"] = round(max(0.0, now - m.created), 6)
        return d

    def _import_mapping(self, md, now, addrs):
        packets, nbytes = _counter(md, "packets"), _counter(md, "bytes")
        age = _number(md["age"])
        if age is None:
            raise ValueError("age: expected a non-negative number of seconds, got %r"
                             % (md["age"],))
        m = super()._import_mapping(md, now, addrs)
        m.packets, m.bytes, m.created = packets, nbytes, now - age
        return m

    def _mapping_text(self, m, now):
        return "%s packets %d bytes %d age %.0fs" % (
            super()._mapping_text(m, now), m.packets, m.bytes, max(0.0, now - m.created))

    @read_handler("top", "the 10 mappings with the most bytes, most first, one line each "
                  "as in the mappings handler")
    def _h_top(self):
        now = self.clock()
        top = heapq.nlargest(10, self._mappings.values(), key=lambda m: m.bytes)
        return "\n".join(self._mapping_text(m, now) for m in top)
