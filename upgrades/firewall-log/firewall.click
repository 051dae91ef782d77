// firewall-log package: configs/firewall.click with a Log element inserted on the
// outbound path (the CLICK-UP demo's upgrade).
//
// firewall.click -- a transparent (bump-in-the-wire) stateful firewall.
//
// Frames are bridged unchanged between the inside and the outside device.  IP
// traffic passes only within sessions the inside opened (TCP through its state
// machine, UDP and ICMP echo by their replies); unsolicited outside packets are
// dropped.  ARP and other non-IP frames are bridged as they are, so hosts on
// both sides share one subnet and need no gateway.
//
//   clickup nf run configs/firewall.click -d in_if=eth0 -d out_if=eth1 --control /tmp/fw.sock

define($in_if nf-eth0, $out_if nf-eth1, $capacity 65536);

from_in  :: FromDevice($in_if, PROMISC true);
from_out :: FromDevice($out_if, PROMISC true);
to_in    :: ToDevice($in_if);
to_out   :: ToDevice($out_if);

fw :: StatefulFirewall(CAPACITY $capacity);

// IP, everything else
cl_in  :: Classifier(12/0800, -);
cl_out :: Classifier(12/0800, -);
from_in  -> cl_in;
from_out -> cl_out;

cl_in[0]  -> Strip(14) -> CheckIPHeader -> [0]fw;
cl_out[0] -> Strip(14) -> CheckIPHeader -> [1]fw;
fw[0] -> log :: Log(outbound, EVERY 1000) -> Unstrip(14) -> to_out;
fw[1] -> Unstrip(14) -> to_in;

cl_in[1]  -> to_out;
cl_out[1] -> to_in;
