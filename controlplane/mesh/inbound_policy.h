// The InboundPolicy resource of one proxy: what its sidecar enforces on traffic coming in to its
// own application. Named after the proxy's service ("catalog.shop"). It carries
//   - local_rate_limit: the rateLimit of a TrafficPolicy whose target Service selects the proxy's
//     workload (none when there is none);
//   - tls_mode (only with the mesh CA on): the workload's effective MeshTLS mode;
//   - authorization: the AuthorizationPolicies of the proxy's namespace that apply to it.
// Every proxy gets exactly one.
#ifndef OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_
#define OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_

#include "controlplane/policy/policy_set.h"
#include "outrigger/v1/config.pb.h"
#include "outrigger/v1/discovery.pb.h"

namespace outrigger::controlplane {

// When several Services with a rateLimit select the workload (reviews and reviews-v2), the most
// specific wins: the one whose selector has the most labels; then the one named after the
// proxy's service; then the TrafficPolicy first by name.
// tls_mode is set only when `mesh_ca` (the control plane issues mesh certificates); without it
// the mesh is plaintext and tls_mode stays unspecified.
// authorization holds every AuthorizationPolicy of the node's namespace that has no targetRef or
// whose target Service selects the node, sorted by name ("namespace/name").
v1::InboundPolicy BuildInboundPolicy(const policy::PolicySet& set, const v1::Node& node,
                                     bool mesh_ca);

// The inbound mTLS mode of `node`'s workload: the MeshTLS whose target Service selects it (the
// most specific, as for rateLimit above), else its namespace's namespace-wide MeshTLS, else the
// mesh-wide Mesh.spec.mtls, else PERMISSIVE. Callers speak plaintext to a workload whose mode is
// DISABLE, mTLS otherwise.
v1::TlsMode EffectiveTlsMode(const policy::PolicySet& set, const v1::Node& node);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_INBOUND_POLICY_H_
