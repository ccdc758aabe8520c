// See policy_set.h.
#include "controlplane/policy/policy_set.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/kind.h"

namespace outrigger::policy {

std::string SourceLocation::ToString() const { return absl::StrCat(file, ":", line, ":", column); }

std::string ObjectKey::ToString() const { return ns.empty() ? name : absl::StrCat(ns, "/", name); }

const ServicePort* Service::FindPort(int port) const {
  for (const ServicePort& p : ports) {
    if (p.port == port) return &p;
  }
  return nullptr;
}

bool Service::Selects(const Labels& workload_labels) const {
  if (selector.empty()) return false;  // selector-less services take endpoints from slices only
  for (const auto& [k, v] : selector) {
    auto it = workload_labels.find(k);
    if (it == workload_labels.end() || it->second != v) return false;
  }
  return true;
}

const Service* PolicySet::FindService(const ObjectKey& key) const {
  auto it = services.find(key);
  return it == services.end() ? nullptr : &it->second;
}

const HttpRoute* PolicySet::FindHttpRoute(const ObjectKey& key) const {
  auto it = http_routes.find(key);
  return it == http_routes.end() ? nullptr : &it->second;
}

const HttpFault* PolicySet::FindHttpFault(const ObjectKey& key) const {
  auto it = http_faults.find(key);
  return it == http_faults.end() ? nullptr : &it->second;
}

const LocalRateLimit* PolicySet::FindLocalRateLimit(const ObjectKey& key) const {
  auto it = local_rate_limits.find(key);
  return it == local_rate_limits.end() ? nullptr : &it->second;
}

const TrafficPolicy* PolicySet::TrafficPolicyFor(const ObjectKey& service) const {
  for (const auto& [key, policy] : traffic_policies) {
    if (policy.target() == service) return &policy;
  }
  return nullptr;
}

std::vector<const EndpointSlice*> PolicySet::EndpointSlicesOf(const ObjectKey& service) const {
  std::vector<const EndpointSlice*> out;
  for (const auto& [key, slice] : endpoint_slices) {
    if (key.ns == service.ns && slice.service_name == service.name) out.push_back(&slice);
  }
  return out;
}

std::vector<std::pair<std::string, int>> PolicySet::CountByKind() const {
  std::vector<std::pair<std::string, int>> counts;
  for (const PolicyKind* kind : PolicyKinds()) {
    const int n =
        static_cast<int>(std::count_if(resources.begin(), resources.end(),
                                       [&](const ResourceId& r) { return r.kind == kind->kind; }));
    if (n > 0) counts.emplace_back(std::string(kind->kind), n);
  }
  return counts;
}

}  // namespace outrigger::policy
