// TrafficPolicy -> the outbound settings of its target Service's cluster: load balancer and
// consistent hashing, connection pool and circuit breakers, outlier detection, active health
// checks and retry budget. What the policy does not write stays unset, so the proxies apply
// their own defaults.
#ifndef OUTRIGGER_CONTROLPLANE_MESH_CLUSTER_POLICY_H_
#define OUTRIGGER_CONTROLPLANE_MESH_CLUSTER_POLICY_H_

#include "controlplane/policy/policy_set.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {

void ApplyTrafficPolicy(const policy::TrafficPolicy& policy, v1::Cluster* cluster);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_CLUSTER_POLICY_H_
