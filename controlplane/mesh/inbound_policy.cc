// See inbound_policy.h.
#include "controlplane/mesh/inbound_policy.h"

#include <tuple>

#include "absl/strings/ascii.h"
#include "controlplane/mesh/proto_values.h"
#include "controlplane/mesh/view_builder.h"

namespace outrigger::controlplane {
namespace {

// How specifically Service `s` (which selects the node) does so: more selector labels first,
// then the Service named after the proxy's service.
using Rank = std::tuple<size_t, bool>;
Rank RankOf(const policy::Service& s, const v1::Node& node) {
  return {s.selector.size(), s.meta.name == node.service()};
}

// The node's namespace, as the policy names it.
std::string NamespaceOf(const v1::Node& node) {
  return node.namespace_().empty() ? "default" : node.namespace_();
}

v1::TlsMode ToTlsMode(const std::string& mode) {
  if (mode == "STRICT") return v1::STRICT;
  if (mode == "DISABLE") return v1::DISABLE;
  return v1::PERMISSIVE;
}

void AddAuthorization(const policy::AuthorizationPolicy& in, v1::AuthorizationPolicy* out) {
  out->set_name(in.meta.key().ToString());
  out->set_action(in.action == policy::AuthorizationAction::kDeny ? v1::AuthorizationPolicy::DENY
                                                                  : v1::AuthorizationPolicy::ALLOW);
  out->set_dry_run(in.dry_run);
  for (const policy::AuthorizationRule& r : in.rules) {
    v1::AuthorizationRule* rule = out->add_rules();
    rule->mutable_principals()->Assign(r.principals.begin(), r.principals.end());
    rule->mutable_namespaces()->Assign(r.namespaces.begin(), r.namespaces.end());
    rule->mutable_paths()->Assign(r.paths.begin(), r.paths.end());
    rule->mutable_methods()->Assign(r.methods.begin(), r.methods.end());
    for (const policy::HeaderCondition& h : r.headers) {
      v1::HeaderCondition* header = rule->add_headers();
      header->set_name(h.name);
      header->mutable_values()->Assign(h.values.begin(), h.values.end());
    }
    rule->mutable_not_principals()->Assign(r.not_principals.begin(), r.not_principals.end());
    rule->mutable_not_paths()->Assign(r.not_paths.begin(), r.not_paths.end());
  }
}

}  // namespace

v1::TlsMode EffectiveTlsMode(const policy::PolicySet& set, const v1::Node& node) {
  const std::string ns = NamespaceOf(node);
  const policy::MeshTls* best = nullptr;
  Rank best_rank;
  const policy::MeshTls* namespace_wide = nullptr;
  for (const auto& [key, tls] : set.mesh_tls) {
    if (key.ns != ns || tls.mode.empty()) continue;
    if (tls.target_name.empty()) {
      if (namespace_wide == nullptr) namespace_wide = &tls;
      continue;
    }
    const policy::Service* service = set.FindService(tls.target());
    if (service == nullptr || !SelectsNode(*service, node)) continue;
    const Rank rank = RankOf(*service, node);
    if (best == nullptr || rank > best_rank) {  // ties keep the first, by name
      best = &tls;
      best_rank = rank;
    }
  }
  if (best != nullptr) return ToTlsMode(best->mode);
  if (namespace_wide != nullptr) return ToTlsMode(namespace_wide->mode);
  return ToTlsMode(set.mesh.mtls);  // "" (not written): PERMISSIVE
}

namespace {

// How a Service port declares its protocol: appProtocol first, else the port name's prefix
// (Istio's convention: "http", "http-web", "tcp-db").
v1::Listener::Protocol PortProtocol(const policy::ServicePort& p) {
  std::string declared = absl::AsciiStrToLower(p.app_protocol);
  if (declared.empty()) {
    declared = absl::AsciiStrToLower(p.name.substr(0, p.name.find('-')));
  }
  if (declared == "tcp" || declared == "mysql" || declared == "mongo" || declared == "redis") {
    return v1::Listener::TCP;
  }
  if (declared == "http" || declared == "http2" || declared == "grpc" || declared == "h2c" ||
      declared == "kubernetes.io/h2c" || declared == "grpc-web") {
    return v1::Listener::HTTP;
  }
  return v1::Listener::DETECT;
}

// The inbound listener's protocol from every port of every Service that selects the workload
// (one inbound listener serves them all): all TCP -> TCP, all HTTP -> HTTP, else DETECT.
v1::Listener::Protocol InboundProtocol(const policy::PolicySet& set, const v1::Node& node) {
  bool any = false;
  bool all_tcp = true;
  bool all_http = true;
  for (const auto& [key, service] : set.services) {
    if (key.ns != NamespaceOf(node) || !SelectsNode(service, node)) continue;
    for (const auto& port : service.ports) {
      any = true;
      const v1::Listener::Protocol p = PortProtocol(port);
      all_tcp = all_tcp && p == v1::Listener::TCP;
      all_http = all_http && p == v1::Listener::HTTP;
    }
  }
  if (!any) return v1::Listener::PROTOCOL_UNSPECIFIED;
  if (all_tcp) return v1::Listener::TCP;
  if (all_http) return v1::Listener::HTTP;
  return v1::Listener::DETECT;
}

}  // namespace

v1::InboundPolicy BuildInboundPolicy(const policy::PolicySet& set, const v1::Node& node,
                                     bool mesh_ca) {
  const std::string ns = NamespaceOf(node);
  v1::InboundPolicy out;
  out.set_name(ClusterName({ns, node.service()}));
  const policy::TrafficPolicy* best = nullptr;
  Rank best_rank;
  for (const auto& [key, policy] : set.traffic_policies) {
    if (!policy.rate_limit) continue;
    const policy::Service* service = set.FindService(policy.target());
    if (service == nullptr || !SelectsNode(*service, node)) continue;
    const Rank rank = RankOf(*service, node);
    if (best == nullptr || rank > best_rank) {  // ties keep the first, by name
      best = &policy;
      best_rank = rank;
    }
  }
  if (best != nullptr) SetLocalRateLimit(*best->rate_limit, out.mutable_local_rate_limit());
  if (mesh_ca) out.set_tls_mode(EffectiveTlsMode(set, node));
  out.set_inbound_protocol(InboundProtocol(set, node));
  // The map is ordered by (namespace, name): within the node's namespace, by name, so the
  // resource (and its version) does not change unless the policies do.
  for (const auto& [key, policy] : set.authorization_policies) {
    if (key.ns != ns) continue;
    if (!policy.target_name.empty()) {
      const policy::Service* service = set.FindService(policy.target());
      if (service == nullptr || !SelectsNode(*service, node)) continue;
    }
    AddAuthorization(policy, out.add_authorization());
  }
  return out;
}

}  // namespace outrigger::controlplane
