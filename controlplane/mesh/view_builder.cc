// See view_builder.h. HTTPRoute -> RouteConfiguration follows the Gateway API's precedence for
// matches (SpecificityOf); ties keep the order written.
#include "controlplane/mesh/view_builder.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/mesh/cluster_policy.h"
#include "controlplane/mesh/inbound_policy.h"
#include "controlplane/mesh/proto_values.h"
#include "controlplane/mesh/route_policy.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {

namespace {

template <typename Message>
Resource Pack(const std::string& name, const Message& m) {
  Resource r;
  r.name = name;
  r.body.PackFrom(m);
  return r;
}

// Gateway API precedence, most specific first: exact path, then (our choice for the
// implementation-specific case) regular expressions, then longer prefixes; then a method match,
// then more header matches, then more query matches.
using Specificity = std::tuple<int, size_t, int, size_t, size_t>;
Specificity SpecificityOf(const policy::RouteMatch& m) {
  using T = policy::PathMatchType;
  const int kind = m.path.type == T::kExact ? 2 : m.path.type == T::kRegularExpression ? 1 : 0;
  const size_t prefix = m.path.type == T::kPathPrefix ? m.path.value.size() : 0;
  return {kind, prefix, m.method.empty() ? 0 : 1, m.headers.size(), m.query_params.size()};
}

void AddMatch(const policy::RouteMatch& m, v1::RouteMatch* out) {
  switch (m.path.type) {
    case policy::PathMatchType::kExact:
      out->set_path(m.path.value);
      break;
    case policy::PathMatchType::kPathPrefix:
      // Whole path segments, as the Gateway API defines PathPrefix ("/foo" is not "/foobar").
      if (m.path.value == "/") {
        out->set_prefix("/");
      } else {
        out->set_path_separated_prefix(m.path.value);
      }
      break;
    case policy::PathMatchType::kRegularExpression:
      out->set_safe_regex(m.path.value);
      break;
  }
  auto values = [](const std::vector<policy::ValueMatch>& in, auto* list) {
    for (const auto& v : in) {
      auto* vm = list->Add();
      vm->set_name(v.name);
      if (v.type == policy::ValueMatchType::kRegularExpression) {
        vm->set_safe_regex(v.value);
      } else {
        vm->set_exact(v.value);
      }
    }
  };
  values(m.headers, out->mutable_headers());
  values(m.query_params, out->mutable_query_parameters());
  out->set_method(m.method);
}

// One Route for one match of a rule: the rule's backends, filters, timeouts and retries.
void AddRule(const policy::RouteRule& rule, const policy::RouteMatch& match,
             const policy::PolicySet& set, v1::VirtualHost* vh) {
  v1::Route* route = vh->add_routes();
  AddMatch(match, route->mutable_match());
  for (const auto& f : rule.filters) {
    if (f.request_header_modifier) {
      auto* h = route->mutable_request_headers();
      for (const auto& s : f.request_header_modifier->set) {
        auto* hv = h->add_set();
        hv->set_name(s.name);
        hv->set_value(s.value);
      }
      for (const auto& a : f.request_header_modifier->add) {
        auto* hv = h->add_add();
        hv->set_name(a.name);
        hv->set_value(a.value);
      }
      for (const auto& r : f.request_header_modifier->remove) h->add_remove(r);
    }
    if (f.request_redirect) {
      auto* r = route->mutable_redirect();
      const auto& rd = *f.request_redirect;
      if (rd.scheme) r->set_scheme(*rd.scheme);
      if (rd.hostname) r->set_host(*rd.hostname);
      if (rd.port) r->set_port(static_cast<uint32_t>(*rd.port));
      if (rd.path) {
        if (rd.path->type == policy::PathModifier::Type::kReplaceFullPath) {
          r->set_path(rd.path->value);
        } else {
          r->set_prefix_rewrite(rd.path->value);
        }
      }
      r->set_response_code(static_cast<uint32_t>(rd.status_code));
    }
  }
  if (route->has_redirect()) {
    ApplyRulePolicy(set, rule, route);
    return;
  }
  v1::RouteAction* action = route->mutable_route();
  for (const auto& f : rule.filters) {
    if (!f.url_rewrite) continue;
    if (f.url_rewrite->hostname) action->set_host_rewrite(*f.url_rewrite->hostname);
    if (f.url_rewrite->path) {
      if (f.url_rewrite->path->type == policy::PathModifier::Type::kReplaceFullPath) {
        action->set_path_rewrite(f.url_rewrite->path->value);
      } else {
        action->set_prefix_rewrite(f.url_rewrite->path->value);
      }
    }
  }
  if (rule.backend_refs.size() == 1) {
    action->set_cluster(ClusterName(rule.backend_refs[0].key()));
  } else {
    for (const auto& b : rule.backend_refs) {
      auto* c = action->mutable_weighted_clusters()->add_clusters();
      c->set_name(ClusterName(b.key()));
      c->set_weight(b.weight);
    }
  }
  std::optional<absl::Duration> timeout = rule.timeouts.request;
  if (!timeout) timeout = set.mesh.default_timeout;
  if (timeout) SetDuration(*timeout, action->mutable_timeout());
  ApplyRulePolicy(set, rule, route);
}

}  // namespace

bool SelectsNode(const policy::Service& s, const v1::Node& node) {
  if (s.selector.empty() || node.namespace_() != s.meta.ns) return false;
  for (const auto& [k, v] : s.selector) {
    auto it = node.labels().find(k);
    if (it != node.labels().end()) {
      if (it->second != v) return false;
    } else if (!(k == "app" && v == node.service())) {
      return false;
    }
  }
  return true;
}

std::string ClusterName(const policy::ObjectKey& service) {
  return absl::StrCat(service.name, ".", service.ns);
}

void ViewBuilderImpl::SetPolicy(std::shared_ptr<const policy::PolicySet> policy) {
  policy_ = std::move(policy);
  cache_.clear();
  inbound_cache_.clear();
}

View ViewBuilderImpl::Build(const v1::Node& node, const std::map<std::string, Workload>& workloads,
                            uint64_t generation) {
  if (generation != cached_generation_) {
    cache_.clear();
    cached_generation_ = generation;
  }
  const std::string& ns = node.namespace_().empty() ? "default" : node.namespace_();
  auto it = cache_.find(ns);
  if (it == cache_.end()) it = cache_.emplace(ns, Compute(ns, workloads)).first;
  View view = it->second;  // shares the namespace's resource lists
  view.types[kInboundPolicyType] = Inbound(node);
  return view;
}

const View::Type& ViewBuilderImpl::Inbound(const v1::Node& node) {
  // Depends on the node's namespace, service and labels only (not on other workloads).
  std::vector<std::string> labels;
  for (const auto& [k, v] : node.labels()) labels.push_back(absl::StrCat(k, "=", v));
  std::sort(labels.begin(), labels.end());
  const std::string key =
      absl::StrCat(node.namespace_(), "\n", node.service(), "\n", absl::StrJoin(labels, "\n"));
  auto it = inbound_cache_.find(key);
  if (it == inbound_cache_.end()) {
    View view;
    if (policy_) {
      const v1::InboundPolicy inbound =
          BuildInboundPolicy(*policy_, node, /*mesh_ca=*/!trust_domain_.empty());
      view.Set(kInboundPolicyType, {Pack(inbound.name(), inbound)});
    }
    it = inbound_cache_.emplace(key, view.Get(kInboundPolicyType)).first;
  }
  return it->second;
}

View ViewBuilderImpl::Compute(const std::string& ns,
                              const std::map<std::string, Workload>& workloads) const {
  View view;
  if (!policy_) return view;
  std::vector<Resource> clusters;
  std::vector<Resource> endpoints;
  v1::RouteConfiguration outbound;
  outbound.set_name("outbound");

  // HTTPRoutes by the Service they attach to.
  std::map<policy::ObjectKey, std::vector<const policy::HttpRoute*>> routes_of;
  for (const auto& [key, route] : policy_->http_routes) {
    for (const auto& parent : route.parent_refs) routes_of[parent.key()].push_back(&route);
  }

  // TrafficPolicies by their target Service.
  std::map<policy::ObjectKey, const policy::TrafficPolicy*> traffic_policy_of;
  for (const auto& [key, tp] : policy_->traffic_policies) {
    traffic_policy_of.emplace(tp.target(), &tp);
  }

  for (const auto& [key, service] : policy_->services) {
    const std::string name = ClusterName(key);
    v1::Cluster cluster;
    cluster.set_name(name);
    // gRPC and HTTP/2 services get HTTP/2 from sidecars (for their HTTP/2 callers); others when
    // the Mesh or the Service's TrafficPolicy says h2UpgradePolicy: UPGRADE.
    bool upgrade = policy_->mesh.h2_upgrade;
    for (const auto& port : service.ports) {
      const std::string app = absl::AsciiStrToLower(port.app_protocol);
      const std::string prefix = absl::AsciiStrToLower(port.name.substr(0, port.name.find('-')));
      if (app == "grpc" || app == "http2" || app == "h2c" || app == "kubernetes.io/h2c" ||
          (app.empty() && (prefix == "grpc" || prefix == "http2" || prefix == "h2c"))) {
        cluster.set_upstream_protocol(v1::Cluster::HTTP2);
      }
    }
    if (auto tp = traffic_policy_of.find(key); tp != traffic_policy_of.end()) {
      ApplyTrafficPolicy(*tp->second, &cluster);
      if (const auto& pool = tp->second->connection_pool; pool && pool->h2_upgrade) {
        upgrade = *pool->h2_upgrade;
      }
    }
    if (upgrade) cluster.set_upstream_protocol(v1::Cluster::HTTP2);
    clusters.push_back(Pack(name, cluster));

    v1::ClusterLoadAssignment cla;
    cla.set_cluster_name(name);
    for (const auto& [id, w] : workloads) {
      if (!w.node.inbound_address().empty() && SelectsNode(service, w.node)) {
        auto* ep = cla.add_endpoints();
        ep->set_address(w.node.inbound_address());
        // The workload's labels: callers' metrics name the version they reached.
        for (const auto& [k, v] : w.node.labels()) (*ep->mutable_labels())[k] = v;
        // A sidecar: its peers speak mTLS to it and check it is who registered, unless its
        // workload's mTLS mode (MeshTLS, else Mesh.spec.mtls) is DISABLE: then plaintext.
        if (!trust_domain_.empty() && EffectiveTlsMode(*policy_, w.node) != v1::DISABLE) {
          ep->set_spiffe_id(
              absl::StrCat("spiffe://", trust_domain_, "/ns/",
                           w.node.namespace_().empty() ? "default" : w.node.namespace_(), "/sa/",
                           w.node.service()));
        }
      }
    }
    for (const policy::EndpointSlice* slice : policy_->EndpointSlicesOf(key)) {
      const int port = slice->ports.empty() ? (service.ports.empty() ? 0 : service.ports[0].port)
                                            : slice->ports[0].port;
      for (const auto& e : slice->endpoints) {
        if (!e.ready || port == 0) continue;
        const bool v6 = slice->address_type == policy::AddressType::kIPv6;
        cla.add_endpoints()->set_address(v6 ? absl::StrCat("[", e.address, "]:", port)
                                            : absl::StrCat(e.address, ":", port));
      }
    }
    endpoints.push_back(Pack(name, cla));

    v1::VirtualHost* vh = outbound.add_virtual_hosts();
    vh->set_name(name);
    if (key.ns == ns) vh->add_domains(key.name);
    vh->add_domains(absl::StrCat(key.name, ".", key.ns));
    vh->add_domains(absl::StrCat(key.name, ".", key.ns, ".svc"));
    vh->add_domains(absl::StrCat(key.name, ".", key.ns, ".svc.cluster.local"));
    auto attached = routes_of.find(key);
    if (attached == routes_of.end()) {
      v1::Route* r = vh->add_routes();
      r->mutable_match()->set_prefix("/");
      r->mutable_route()->set_cluster(name);
      if (policy_->mesh.default_timeout) {
        SetDuration(*policy_->mesh.default_timeout, r->mutable_route()->mutable_timeout());
      }
      continue;
    }
    // Every (rule, match) of every attached route, most specific first.
    struct Entry {
      const policy::RouteRule* rule;
      const policy::RouteMatch* match;
      Specificity specificity;
      size_t order;
    };
    std::vector<Entry> entries;
    for (const policy::HttpRoute* route : attached->second) {
      for (const auto& rule : route->rules) {
        for (const auto& match : rule.matches) {
          entries.push_back({&rule, &match, SpecificityOf(match), entries.size()});
        }
      }
    }
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.specificity > b.specificity;
    });
    for (const Entry& e : entries) AddRule(*e.rule, *e.match, *policy_, vh);
  }
  view.Set(kClusterType, std::move(clusters));
  view.Set(kEndpointType, std::move(endpoints));
  view.Set(kRouteType, {Pack("outbound", outbound)});
  return view;
}

}  // namespace outrigger::controlplane
