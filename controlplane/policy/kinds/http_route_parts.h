// The pieces of an HTTPRoute rule that have rules of their own, converted and checked apart from
// the kind (http_route.cc): matches (http_route_matches.cc), filters (http_route_filters.cc) and
// retries (http_route_retry.cc).
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_KINDS_HTTP_ROUTE_PARTS_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_KINDS_HTTP_ROUTE_PARTS_H_

#include <optional>
#include <string>
#include <vector>

#include "controlplane/policy/kinds/kind_support.h"
#include "controlplane/policy/policy_set.h"
#include "outrigger/policy/v1/kinds.pb.h"

namespace outrigger::policy {

// `rule`'s matches (at `path`, "spec.rules[0]"), defaulted to one PathPrefix "/" match.
std::vector<RouteMatch> ConvertMatches(const std::string& path, const v1::HTTPRouteRule& rule,
                                       FieldErrors* err);

// `rule`'s filters. `matches` are the rule's converted matches: ReplacePrefixMatch needs them to
// be PathPrefix matches. `route_ns` is the namespace a mirror's backendRef defaults to.
std::vector<RouteFilter> ConvertFilters(const std::string& path, const v1::HTTPRouteRule& rule,
                                        const std::vector<RouteMatch>& matches,
                                        const std::string& route_ns, FieldErrors* err);

// `rule`'s retry, or nullopt when it has none.
std::optional<RouteRetry> ConvertRetry(const std::string& path, const v1::HTTPRouteRule& rule,
                                       FieldErrors* err);

// A reference to a Service backend (backendRefs[] and RequestMirror's backendRef): group and
// kind must name a Service, name is required, the port is required (as the Gateway API requires
// for Services). `weight` is left at its default.
BackendRef ConvertBackend(const std::string& path, absl::string_view group, absl::string_view kind,
                          absl::string_view name, absl::string_view ns, std::optional<int> port,
                          const std::string& route_ns, FieldErrors* err);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_KINDS_HTTP_ROUTE_PARTS_H_
