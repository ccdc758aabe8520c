// The resilience half of a cluster's config: load balancer, hash policy, circuit breakers,
// outlier detection, active health checks and the retry budget, from v1::Cluster to
// ClusterConfig with the defaults applied. Errors name the field ("outlier_detection.interval:
// must be positive").
#ifndef OUTRIGGER_PROXY_CONFIG_CLUSTER_POLICIES_H_
#define OUTRIGGER_PROXY_CONFIG_CLUSTER_POLICIES_H_

#include "absl/status/status.h"
#include "proxy/config/snapshot.h"

namespace outrigger::v1 {
class Cluster;
}

namespace outrigger::proxy {

absl::Status ClusterPoliciesFromProto(const v1::Cluster& proto, ClusterConfig* out);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_CONFIG_CLUSTER_POLICIES_H_
