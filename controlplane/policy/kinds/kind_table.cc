// The table of policy kinds (see kind.h). To add a kind: write kinds/<kind>.cc defining
// `const PolicyKind& <Kind>Kind()`, declare it here and add it to the table.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/kind.h"

namespace outrigger::policy {

const PolicyKind& ServiceKind();              // kinds/service.cc
const PolicyKind& EndpointSliceKind();        // kinds/endpoint_slice.cc
const PolicyKind& HttpRouteKind();            // kinds/http_route.cc
const PolicyKind& MeshKind();                 // kinds/mesh.cc
const PolicyKind& TrafficPolicyKind();        // kinds/traffic_policy.cc
const PolicyKind& HttpFaultKind();            // kinds/http_fault.cc
const PolicyKind& LocalRateLimitKind();       // kinds/local_rate_limit.cc
const PolicyKind& AuthorizationPolicyKind();  // kinds/authorization_policy.cc
const PolicyKind& MeshTlsKind();              // kinds/mesh_tls.cc

const std::vector<const PolicyKind*>& PolicyKinds() {
  static const auto* kinds = new std::vector<const PolicyKind*>{
      &ServiceKind(),        &EndpointSliceKind(),       &HttpRouteKind(),
      &MeshKind(),           &TrafficPolicyKind(),       &HttpFaultKind(),
      &LocalRateLimitKind(), &AuthorizationPolicyKind(), &MeshTlsKind(),
  };
  return *kinds;
}

const PolicyKind* FindPolicyKind(absl::string_view api_version, absl::string_view kind) {
  for (const PolicyKind* k : PolicyKinds()) {
    if (k->api_version == api_version && k->kind == kind) return k;
  }
  return nullptr;
}

std::string SupportedKinds() {
  return absl::StrJoin(PolicyKinds(), ", ", [](std::string* out, const PolicyKind* k) {
    absl::StrAppend(out, k->api_version, " ", k->kind);
  });
}

bool Declared(const PolicySet& set, absl::string_view kind, const ObjectKey& key) {
  return std::any_of(set.resources.begin(), set.resources.end(),
                     [&](const ResourceId& r) { return r.kind == kind && r.key == key; });
}

}  // namespace outrigger::policy
