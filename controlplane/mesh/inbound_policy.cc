// See inbound_policy.h.
#include "controlplane/mesh/inbound_policy.h"

#include <tuple>

#include "controlplane/mesh/proto_values.h"
#include "controlplane/mesh/view_builder.h"

namespace outrigger::controlplane {

v1::InboundPolicy BuildInboundPolicy(const policy::PolicySet& set, const v1::Node& node) {
  const std::string ns = node.namespace_().empty() ? "default" : node.namespace_();
  v1::InboundPolicy out;
  out.set_name(ClusterName({ns, node.service()}));
  const policy::TrafficPolicy* best = nullptr;
  std::tuple<size_t, bool> best_rank;  // (selector labels, named after the proxy's service)
  for (const auto& [key, policy] : set.traffic_policies) {
    if (!policy.rate_limit) continue;
    const policy::Service* service = set.FindService(policy.target());
    if (service == nullptr || !SelectsNode(*service, node)) continue;
    const std::tuple<size_t, bool> rank{service->selector.size(),
                                        service->meta.name == node.service()};
    if (best == nullptr || rank > best_rank) {  // ties keep the first, by name
      best = &policy;
      best_rank = rank;
    }
  }
  if (best != nullptr) SetLocalRateLimit(*best->rate_limit, out.mutable_local_rate_limit());
  return out;
}

}  // namespace outrigger::controlplane
