"""iperf3 runs and a defensive reader of their ``-J`` output.

iperf3 prints one JSON object, but may print it after or before other text
(warnings, a second object when the server side fails) and reports failures
in an ``"error"`` key with exit status 0 or 1.  ``parse_json`` takes the first
complete JSON object in the text and raises :class:`IperfError` with iperf3's
own message when the run failed.
"""

import json

__all__ = ["IperfError", "parse_json", "tcp_gbps", "udp_summary"]


class IperfError(RuntimeError):
    pass


def parse_json(text):
    start = text.find("{")
    if start < 0:
        raise IperfError("iperf3 printed no JSON: %r" % text[:200])
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError as e:
        raise IperfError("iperf3 printed broken JSON (%s): %r" % (e, text[start:start + 200])) \
            from None
    if obj.get("error"):
        raise IperfError("iperf3: %s" % obj["error"])
    if "end" not in obj:
        raise IperfError("iperf3 JSON has no 'end' section")
    return obj


def tcp_gbps(obj):
    """Receiver-side goodput of a TCP run, Gbit/s."""
    end = obj["end"]
    s = end.get("sum_received") or end.get("sum")
    if not s:
        raise IperfError("iperf3 JSON has no TCP summary")
    return s["bits_per_second"] / 1e9


def udp_summary(obj):
    """(sent datagrams, lost datagrams, seconds, received kpps) from a UDP run's end.sum,
    which holds the server's counts."""
    s = obj["end"].get("sum")
    if not s or "lost_packets" not in s:
        raise IperfError("iperf3 JSON has no UDP summary")
    pkts, lost, secs = s["packets"], s["lost_packets"], s["seconds"]
    return pkts, lost, secs, (pkts - lost) / secs / 1e3 if secs else 0.0
