"""The SDN topology's OpenFlow controller: one L2 learning app, and its launcher.

``L2Learning`` is a single-purpose os-ken application (OpenFlow 1.3).  When a
switch connects it installs a table-miss entry that sends unmatched frames to
the controller; on every packet-in it learns which port the source MAC lives
behind, installs a flow for a destination it already knows and floods the
others.  Its two hooks are registered with the framework's ``set_ev_cls``
decorator.  The module imports Ryu when Ryu is installed and works, else its
maintained fork os-ken, whose app API is the same.

The launcher replaces ``ryu-manager``/``osken-manager`` (os-ken 4.x no longer
has a command): a few lines around ``AppManager`` that parse the listening
address into the framework's configuration and run the app until SIGTERM.
The project starts it in a subprocess and stops it by PID
(topologies/sdn.py, ``OsKenController``):

    python -m topologies.controller --host 127.0.0.1 --port 6653

``--app steering --config FILE [--rest-port PORT]`` runs NFSteering
(topologies/steering.py) instead: it steers a pair of NFs and answers REST on
127.0.0.1:PORT.  The config is checked before the framework starts, so a bad
one fails at once with its reason.
"""

import argparse
import importlib
import logging
import os
import signal
import sys


def _framework():
    """The framework's package name: 'ryu' if Ryu imports, else 'os_ken'."""
    errors = []
    for name in ("ryu", "os_ken"):
        try:
            importlib.import_module(name + ".base.app_manager")
            return name
        except Exception as e:  # noqa: BLE001 -- Ryu 4.34 fails on 3.11 beyond ImportError
            errors.append("%s: %s" % (name, e))
    raise ImportError("the SDN controller needs os-ken (or Ryu): .venv/bin/pip install "
                      "os-ken==4.2.2 (%s)" % "; ".join(errors))


FRAMEWORK = _framework()


def _m(name):
    """The framework's module ``name`` (e.g. 'controller.handler')."""
    return importlib.import_module("%s.%s" % (FRAMEWORK, name))


app_manager = _m("base.app_manager")
ofp_event = _m("controller.ofp_event")
handler = _m("controller.handler")
ofproto_v1_3 = _m("ofproto.ofproto_v1_3")
set_ev_cls = handler.set_ev_cls
BaseApp = getattr(app_manager, "OSKenApp", None) or app_manager.RyuApp

APP_MODULE = "topologies.controller"      # what AppManager imports to find the app
LOG = logging.getLogger("clickup.controller")


class L2Learning(BaseApp):
    """A learning Ethernet switch for every datapath that connects (OpenFlow 1.3)."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    FLOW_PRIORITY = 10
    IDLE_TIMEOUT = 0          # learned flows stay: hosts never move in our topologies

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.macs = {}        # dpid -> {mac bytes: port}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, handler.CONFIG_DISPATCHER)
    def on_switch_features(self, ev):
        """A switch connected: send it everything no flow matches (table-miss)."""
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self.macs[dp.id] = {}
        to_controller = parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)
        self._add_flow(dp, 0, parser.OFPMatch(), [to_controller])
        LOG.info("switch %016x connected", dp.id)

    @set_ev_cls(ofp_event.EventOFPPacketIn, handler.MAIN_DISPATCHER)
    def on_packet_in(self, ev):
        """Learn the source's port; forward to the destination's port, or flood."""
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        data = msg.data
        if len(data) < 14:
            return
        dst, src = bytes(data[0:6]), bytes(data[6:12])
        table = self.macs.setdefault(dp.id, {})
        if not src[0] & 1:                       # never learn a group address
            table[src] = in_port
        out_port = table.get(dst, ofp.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            match = parser.OFPMatch(in_port=in_port, eth_dst=_mac_text(dst))
            self._add_flow(dp, self.FLOW_PRIORITY, match, actions)
        buffered = msg.buffer_id != ofp.OFP_NO_BUFFER
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, in_port=in_port,
                                        actions=actions, data=None if buffered else data))

    def _add_flow(self, dp, priority, match, actions):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=priority, match=match,
                                      instructions=inst, idle_timeout=self.IDLE_TIMEOUT))


def _mac_text(mac):
    return ":".join("%02x" % b for b in mac)


# -- launcher ----------------------------------------------------------------------------------

def _parse(argv):
    ap = argparse.ArgumentParser(prog="python -m topologies.controller",
                                 description="Run an OpenFlow 1.3 controller app (%s): L2 "
                                             "learning, or NF steering." % FRAMEWORK)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=6653, help="OpenFlow TCP port")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    ap.add_argument("--app", choices=("l2", "steering"), default="l2",
                    help="l2: L2 learning (default); steering: NFSteering for an NF pair")
    ap.add_argument("--config", metavar="FILE", help="steering's JSON configuration")
    ap.add_argument("--rest-port", type=int, metavar="PORT",
                    help="steering's REST API on 127.0.0.1:PORT (default: none)")
    args = ap.parse_args(argv)
    if args.app == "steering" and not args.config:
        ap.error("--app steering needs --config FILE (its JSON configuration)")
    if args.app == "l2" and (args.config or args.rest_port):
        ap.error("--config and --rest-port are options of --app steering")
    if args.rest_port is not None and not 0 < args.rest_port < 65536:
        ap.error("--rest-port must be a TCP port from 1 to 65535, not %d" % args.rest_port)
    return ap, args


def _app_module(ap, args):
    """The module AppManager loads; for steering, its configuration checked and handed over."""
    if args.app == "l2":
        return APP_MODULE
    from topologies import steering
    try:
        config = steering.load_config(args.config)
    except steering.ConfigError as e:
        ap.error(str(e))
    rest = ("127.0.0.1", args.rest_port) if args.rest_port else None
    steering.NFSteering.configure(config, rest)
    return steering.__name__


def main(argv=None):
    ap, args = _parse(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    hub = _m("lib.hub")
    hub.patch(thread=False)            # what ryu-manager does first (a no-op on os-ken 4)
    module = _app_module(ap, args)     # after the patch: steering imports socket servers
    _m("controller.controller")        # registers the ofp-* options parsed next
    cfg = _m("cfg")
    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port)],
             project=FRAMEWORK)
    # SIGTERM (how the project stops us) and Ctrl-C end the process at once: the app
    # keeps no state worth saving, and os-ken 4's native hub cannot stop its own
    # threads (run_apps' teardown fails and leaves them running).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    app_manager.AppManager.run_apps([module])
    return 0


if __name__ == "__main__":
    sys.exit(main())
