// nat.click (upgrade package nat-v2-broken) -- FAULT INJECTION.  The stateful NAT
// of configs/nat.click with an IPRewriter (elements/rewriter_broken.py) that fails
// on purpose when it starts, so an upgrade to this package fails in its run phase
// and the NF must go back to the old version (RFC 7654 section 6, abort and
// rollback; `clickup run issu` uses it for its rollback scenario).  Never deploy it.
// The configuration is configs/nat.click's; only this comment differs.
//
// Inside hosts use $in_ip as their gateway; their TCP, UDP and ICMP echo flows
// leave from $out_ip with a random outside port (endpoint-independent mapping,
// RFC 4787).  The NAT answers ARP for its two addresses and resolves next hops
// with ARP; servers sit on the outside subnet.  The devices should carry no IP
// address in the NF's namespace: the NAT owns these addresses.
//
//   clickup nf upgrade /tmp/nat.sock --to upgrades/nat-v2-broken/nat.click \
//       --elements upgrades/nat-v2-broken/elements --strategy clickup   (rolls back)

define($in_if nf-eth0, $out_if nf-eth1,
       $in_ip 10.0.0.254, $in_net 10.0.0.0/24,
       $out_ip 10.0.1.254, $out_net 10.0.1.0/24,
       $ports 1024-65535, $capacity 65536);

AddressInfo(inside  $in_ip  $in_net  $in_if:eth,
            outside $out_ip $out_net $out_if:eth);

from_in  :: FromDevice($in_if);
from_out :: FromDevice($out_if);
to_in    :: ToDevice($in_if);
to_out   :: ToDevice($out_if);

// ARP requests, ARP replies, IP, everything else
cl_in  :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
cl_out :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
from_in  -> cl_in;
from_out -> cl_out;

arpq_in  :: ARPQuerier(inside);
arpq_out :: ARPQuerier(outside);
cl_in[0]  -> ARPResponder(inside)  -> to_in;
cl_out[0] -> ARPResponder(outside) -> to_out;
cl_in[1]  -> [1]arpq_in;
cl_out[1] -> [1]arpq_out;
cl_in[3]  -> Discard;
cl_out[3] -> Discard;

// The NAT.  Input 0: from the inside, new flows get a mapping; input 1: from
// the outside, only replies to existing mappings get in.
rw :: IPRewriter(pattern outside $ports - - 0 1, drop, CAPACITY $capacity);

cl_in[2] -> Strip(14) -> CheckIPHeader
         -> for_me_in :: IPClassifier(dst host inside, -);
for_me_in[0] -> Discard;          // addressed to the NAT itself: not forwarded
for_me_in[1] -> [0]rw;
cl_out[2] -> Strip(14) -> CheckIPHeader -> [1]rw;

// The next hop is the packet's destination: CheckIPHeader sets the destination
// annotation ARPQuerier resolves, and IPRewriter updates it (DST_ANNO), so no
// GetIPAddress(16) is needed here.
rw[0] -> DecIPTTL -> [0]arpq_out -> to_out;
rw[1] -> DecIPTTL -> [0]arpq_in -> to_in;
