// The InboundPolicy resource of one proxy: what its sidecar enforces on traffic coming in to its
// own application. Named after the proxy's service ("catalog.shop"); its local_rate_limit is the
// rateLimit of a TrafficPolicy whose target Service selects the proxy's workload, and it is
// empty when there is none. Every proxy gets exactly one.
#ifndef OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_
#define OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_

#include "controlplane/policy/policy_set.h"
#include "outrigger/v1/config.pb.h"
#include "outrigger/v1/discovery.pb.h"

namespace outrigger::controlplane {

// When several Services with a rateLimit select the workload (reviews and reviews-v2), the most
// specific wins: the one whose selector has the most labels; then the one named after the
// proxy's service; then the TrafficPolicy first by name.
v1::InboundPolicy BuildInboundPolicy(const policy::PolicySet& set, const v1::Node& node);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_
