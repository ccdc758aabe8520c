// The resilience side of an HTTPRoute rule, on each route made from it: retry and
// timeouts.backendRequest -> route.retry_policy, RequestMirror filters ->
// route.request_mirror_policies, and ExtensionRef filters -> the route's fault (HTTPFault) and
// local_rate_limit (LocalRateLimit).
#ifndef OUTRIGGER_CONTROLPLANE_MESH_ROUTE_POLICY_H_
#define OUTRIGGER_CONTROLPLANE_MESH_ROUTE_POLICY_H_

#include "controlplane/policy/policy_set.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {

// `route` already has its match, and its action (route) or redirect. Retries and mirrors need an
// action: a redirect route only takes the fault and the rate limit.
void ApplyRulePolicy(const policy::PolicySet& set, const policy::RouteRule& rule, v1::Route* route);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_ROUTE_POLICY_H_
