"""Click's argument syntax: splitting, keywords, and typed values.

A configuration string is a comma-separated list of arguments; commas inside
quotes, parentheses, brackets or braces do not split.  An argument whose first
word is an upper-case identifier followed by a space (or nothing) is a keyword
argument ``KEYWORD value``; others are positional and fill the element's
positional parameters in order.  Values are parsed by small typed parsers that
raise ``ValueError`` with what was expected; :mod:`nf.element` turns that into
an error naming the element and the keyword.
"""

import re

from . import netutil

__all__ = ["split_args", "split_words", "split_keyword", "unquote", "TYPES", "parse_value",
           "AddressTable"]

_KEYWORD = re.compile(r"^([A-Z][A-Z0-9_]*)(?:\s+(.*))?$", re.S)
_OPEN = {"(": ")", "[": "]", "{": "}"}


def _split(text, seps):
    out, depth, cur, quote, i = [], [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            cur.append(c)
        elif c in _OPEN:
            depth.append(_OPEN[c])
            cur.append(c)
        elif depth and c == depth[-1]:
            depth.pop()
            cur.append(c)
        elif not depth and c in seps:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def split_args(text):
    """Split a configuration string at top-level commas; strip each argument.

    An empty configuration gives []; a trailing comma is allowed, as in Click.
    """
    if text is None or not text.strip():
        return []
    parts = [p.strip() for p in _split(text, ",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    return parts


def split_words(text):
    """Split at top-level whitespace (quotes and brackets kept together)."""
    return [w for w in _split(text.strip(), " \t\r\n") if w]


def split_keyword(arg):
    """'KEYWORD value' -> ('KEYWORD', 'value'); anything else -> (None, arg)."""
    m = _KEYWORD.match(arg)
    if m:
        return m.group(1), (m.group(2) or "").strip()
    return None, arg


def unquote(text):
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        body = t[1:-1]
        if t[0] == '"':
            body = bytes(body, "utf-8").decode("unicode_escape")
        return body
    return t


class AddressTable:
    """Names declared by AddressInfo, usable wherever an address is expected.

    ``NAME`` gives the IP address (or prefix, or Ethernet address, by the type
    asked for).  ``IFNAME:eth`` reads a device's Ethernet address from sysfs,
    as userlevel Click does.  An ``offline`` table (used when a config is only
    checked, not run) lets a missing device stand as 00:00:00:00:00:00 and
    lists it in ``unresolved``: the device need exist only where the NF runs.
    """

    def __init__(self, offline=False):
        self.ip, self.prefix, self.eth = {}, {}, {}
        self.offline = offline
        self.unresolved = []

    def add(self, name, value_words):
        for w in value_words:
            w = unquote(w)
            try:
                if "/" in w:
                    self.prefix[name] = netutil.parse_prefix(w)
                    addr = netutil.parse_ip(w.split("/")[0])
                    self.ip.setdefault(name, addr)
                    continue
                self.ip[name] = netutil.parse_ip(w)
                continue
            except ValueError:
                pass
            try:
                self.eth[name] = netutil.parse_mac(w)
                continue
            except ValueError:
                pass
            if w.endswith(":eth"):
                self.eth[name] = self.device_mac(w[:-4])
                continue
            raise ValueError("AddressInfo %s: %r is not an IP address, prefix or Ethernet "
                             "address" % (name, w))

    def device_mac(self, ifname):
        try:
            return _ioctl_mac(ifname)
        except OSError:
            if self.offline:
                self.unresolved.append(ifname)
                return bytes(6)
            raise ValueError("no network device %r to read an Ethernet address from "
                             "(is the interface up in this namespace?)" % ifname) from None


def _ioctl_mac(ifname):
    """A device's Ethernet address by SIOCGIFHWADDR, which, unlike /sys, answers for
    the calling thread's network namespace."""
    import fcntl
    import socket
    import struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16s16x", ifname.encode()[:15])
        return fcntl.ioctl(s.fileno(), 0x8927, req)[18:24]


# -- typed value parsers: each takes (text, addresses) and raises ValueError ----------

def _int(t, _a=None):
    try:
        return int(t, 0)
    except ValueError:
        raise ValueError("expected integer") from None


def _uint(t, _a=None):
    try:
        v = int(t, 0)
    except ValueError:
        raise ValueError("expected unsigned integer") from None
    if v < 0:
        raise ValueError("expected unsigned integer")
    return v


def _bool(t, _a=None):
    v = t.strip().lower()
    if v in ("true", "yes", "1", "on"):
        return True
    if v in ("false", "no", "0", "off"):
        return False
    raise ValueError("expected boolean (true or false)")


def _double(t, _a=None):
    try:
        return float(t)
    except ValueError:
        raise ValueError("expected real number") from None


_TIME_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "msec": 1e-3, "us": 1e-6, "usec": 1e-6,
               "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}


def _seconds(t, _a=None):
    m = re.match(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*$", t)
    if not m or (m.group(2) and m.group(2) not in _TIME_UNITS):
        raise ValueError("expected time in seconds (like 30, 1.5s, 200ms, 2h)")
    return float(m.group(1)) * _TIME_UNITS.get(m.group(2) or "s")


def _string(t, _a=None):
    return unquote(t)


def _word(t, _a=None):
    w = split_words(t)
    if len(w) != 1:
        raise ValueError("expected a single word")
    return unquote(w[0])


def _ip(t, a=None):
    t = unquote(t)
    if a is not None and t in a.ip:
        return a.ip[t]
    try:
        return netutil.parse_ip(t)
    except ValueError:
        raise ValueError("expected IP address (or an AddressInfo name)") from None


def _prefix(t, a=None):
    t = unquote(t)
    if a is not None and t in a.prefix:
        return a.prefix[t]
    try:
        return netutil.parse_prefix(t)
    except ValueError:
        raise ValueError("expected IP prefix like 10.0.0.0/8 (or an AddressInfo name)") from None


def _eth(t, a=None):
    t = unquote(t)
    if a is not None and t in a.eth:
        return a.eth[t]
    if t.endswith(":eth"):
        return (a if a is not None else AddressTable()).device_mac(t[:-4])
    try:
        return netutil.parse_mac(t)
    except ValueError:
        raise ValueError("expected Ethernet address like 00:11:22:33:44:55 "
                         "(or an AddressInfo name, or IFNAME:eth)") from None


def _bandwidth(t, _a=None):
    m = re.match(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)(bps|Bps|b|B)?\s*$", t)
    if not m:
        raise ValueError("expected bandwidth like 10Mbps or 1.5MBps")
    v = float(m.group(1)) * {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9,
                             "G": 1e9}[m.group(2)]
    unit = m.group(3) or "Bps"
    return v / 8 if unit in ("bps", "b") else v   # bytes per second


def _raw(t, _a=None):
    return t


TYPES = {
    "int": _int, "uint": _uint, "bool": _bool, "double": _double, "seconds": _seconds,
    "string": _string, "word": _word, "ip": _ip, "prefix": _prefix, "eth": _eth,
    "bandwidth": _bandwidth, "raw": _raw,
}

EXPECTED = {
    "int": "integer", "uint": "unsigned integer", "bool": "boolean", "double": "real number",
    "seconds": "time", "string": "string", "word": "word", "ip": "IP address",
    "prefix": "IP prefix", "eth": "Ethernet address", "bandwidth": "bandwidth", "raw": "text",
}


def parse_value(kind, text, addresses=None):
    fn = TYPES[kind] if isinstance(kind, str) else kind
    return fn(text, addresses)
