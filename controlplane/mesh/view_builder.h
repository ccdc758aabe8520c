// Turns mesh policy plus the registered workloads into what one proxy should have: a cluster and
// its endpoints per Service (with its TrafficPolicy's settings), an "outbound" route table with a
// virtual host per Service (HTTPRoute rules when one is attached, else everything to the Service
// itself), and the proxy's own InboundPolicy (inbound_policy.h).
//
// Naming: the cluster of Service `reviews` in namespace `default` is "reviews.default"; its
// virtual host answers "reviews" (from the same namespace), "reviews.default",
// "reviews.default.svc" and "reviews.default.svc.cluster.local", on any port.
// A workload is selected by a Service when its labels (plus an implicit app=<service>) include
// every selector label, in the same namespace; its endpoint is its sidecar's inbound address.
#ifndef OUTRIGGER_CONTROLPLANE_MESH_VIEW_BUILDER_H_
#define OUTRIGGER_CONTROLPLANE_MESH_VIEW_BUILDER_H_

#include <map>
#include <memory>
#include <string>

#include "controlplane/policy/policy_set.h"
#include "controlplane/server/discovery_server.h"

namespace outrigger::controlplane {

class ViewBuilderImpl {
 public:
  void SetPolicy(std::shared_ptr<const policy::PolicySet> policy);
  // With the mesh CA on: sidecar endpoints carry the SPIFFE ID their peers must present
  // (spiffe://<trust_domain>/ns/<namespace>/sa/<service>) unless the workload's mTLS mode is
  // DISABLE, and InboundPolicy carries that mode (EffectiveTlsMode in inbound_policy.h). Empty
  // (the default): plaintext mesh.
  void SetTrustDomain(std::string trust_domain) {
    trust_domain_ = std::move(trust_domain);
    cache_.clear();
    inbound_cache_.clear();
  }
  const policy::PolicySet* policy() const { return policy_.get(); }
  // Views depend only on the proxy's namespace, so they are cached per namespace until the
  // policy or the workloads (`generation`) change.
  View Build(const v1::Node& node, const std::map<std::string, Workload>& workloads,
             uint64_t generation);

 private:
  View Compute(const std::string& ns, const std::map<std::string, Workload>& workloads) const;
  // The node's InboundPolicy, cached by namespace, service and labels until the policy changes.
  const View::Type& Inbound(const v1::Node& node);

  std::shared_ptr<const policy::PolicySet> policy_;
  std::string trust_domain_;
  std::map<std::string, View> cache_;
  std::map<std::string, View::Type> inbound_cache_;
  uint64_t cached_generation_ = ~0ull;
};

// "reviews.default"
std::string ClusterName(const policy::ObjectKey& service);

// Whether Service `s` selects the workload of `node`: same namespace, and the node's labels (plus
// an implicit app=<service> when it has no app label) include every selector label.
bool SelectsNode(const policy::Service& s, const v1::Node& node);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_VIEW_BUILDER_H_
