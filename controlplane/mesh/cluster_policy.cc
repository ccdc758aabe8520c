// See cluster_policy.h. The field names on both sides are alike on purpose; where they differ
// (consecutive5xxErrors -> consecutive_5xx, panicThreshold -> healthy_panic_threshold, the
// connection pool's limits -> circuit_breakers) this is the one place that knows.
#include "controlplane/mesh/cluster_policy.h"

#include "controlplane/mesh/proto_values.h"

namespace outrigger::controlplane {
namespace {

v1::Cluster::LbPolicy LbPolicyOf(policy::LoadBalancerType type) {
  using T = policy::LoadBalancerType;
  switch (type) {
    case T::kRoundRobin:
      return v1::Cluster::ROUND_ROBIN;
    case T::kLeastRequest:
      return v1::Cluster::LEAST_REQUEST;
    case T::kRingHash:
      return v1::Cluster::RING_HASH;
    case T::kMaglev:
      return v1::Cluster::MAGLEV;
    case T::kPeakEwma:
      return v1::Cluster::PEAK_EWMA;
    case T::kRandom:
      return v1::Cluster::RANDOM;
  }
  return v1::Cluster::ROUND_ROBIN;
}

void ApplyLoadBalancer(const policy::LoadBalancerSettings& lb, v1::Cluster* out) {
  if (lb.type) out->set_lb_policy(LbPolicyOf(*lb.type));
  if (lb.consistent_hash) {
    v1::HashPolicy* h = out->add_hash_policy();
    switch (lb.consistent_hash->source) {
      case policy::ConsistentHash::Source::kHeader:
        h->set_header(lb.consistent_hash->name);
        break;
      case policy::ConsistentHash::Source::kCookie:
        h->set_cookie(lb.consistent_hash->name);
        break;
      case policy::ConsistentHash::Source::kSourceIp:
        h->set_source_ip(true);
        break;
    }
  }
  if (lb.panic_threshold) out->set_healthy_panic_threshold(*lb.panic_threshold);
  if (lb.ewma_decay) SetDuration(*lb.ewma_decay, out->mutable_ewma_decay());
}

void ApplyConnectionPool(const policy::ConnectionPoolSettings& pool, v1::Cluster* out) {
  if (pool.connect_timeout) SetDuration(*pool.connect_timeout, out->mutable_connect_timeout());
  if (pool.idle_timeout) SetDuration(*pool.idle_timeout, out->mutable_idle_timeout());
  if (pool.max_idle_connections_per_host) {
    out->set_max_idle_connections_per_host(*pool.max_idle_connections_per_host);
  }
  if (pool.max_connections || pool.max_pending_requests || pool.max_requests || pool.max_retries) {
    v1::CircuitBreakers* cb = out->mutable_circuit_breakers();
    if (pool.max_connections) cb->set_max_connections(*pool.max_connections);
    if (pool.max_pending_requests) cb->set_max_pending_requests(*pool.max_pending_requests);
    if (pool.max_requests) cb->set_max_requests(*pool.max_requests);
    if (pool.max_retries) cb->set_max_retries(*pool.max_retries);
  }
}

void ApplyOutlierDetection(const policy::OutlierDetectionSettings& od, v1::Cluster* cluster) {
  v1::OutlierDetection* out = cluster->mutable_outlier_detection();
  if (od.consecutive_5xx_errors) out->set_consecutive_5xx(*od.consecutive_5xx_errors);
  if (od.consecutive_gateway_errors) {
    out->set_consecutive_gateway_failure(*od.consecutive_gateway_errors);
  }
  if (od.interval) SetDuration(*od.interval, out->mutable_interval());
  if (od.base_ejection_time) SetDuration(*od.base_ejection_time, out->mutable_base_ejection_time());
  if (od.max_ejection_time) SetDuration(*od.max_ejection_time, out->mutable_max_ejection_time());
  if (od.max_ejection_percent) out->set_max_ejection_percent(*od.max_ejection_percent);
  if (od.success_rate) {
    out->set_success_rate_minimum_hosts(od.success_rate->minimum_hosts);
    if (od.success_rate->request_volume) {
      out->set_success_rate_request_volume(*od.success_rate->request_volume);
    }
    if (od.success_rate->stdev_factor) {
      out->set_success_rate_stdev_factor(*od.success_rate->stdev_factor);
    }
  }
}

void ApplyHealthCheck(const policy::HealthCheckSettings& hc, v1::Cluster* cluster) {
  v1::HealthCheck* out = cluster->mutable_health_check();
  out->set_path(hc.path);
  if (hc.interval) SetDuration(*hc.interval, out->mutable_interval());
  if (hc.timeout) SetDuration(*hc.timeout, out->mutable_timeout());
  if (hc.unhealthy_threshold) out->set_unhealthy_threshold(*hc.unhealthy_threshold);
  if (hc.healthy_threshold) out->set_healthy_threshold(*hc.healthy_threshold);
  for (uint32_t s : hc.expected_statuses) out->add_expected_statuses(s);
  out->set_host(hc.host);
}

void ApplyRetryBudget(const policy::RetryBudgetSettings& rb, v1::Cluster* cluster) {
  v1::RetryBudget* out = cluster->mutable_retry_budget();
  if (rb.percent) out->set_budget_percent(*rb.percent);
  if (rb.min_retries_per_second) out->set_min_retries_per_second(*rb.min_retries_per_second);
  if (rb.ttl) SetDuration(*rb.ttl, out->mutable_ttl());
}

}  // namespace

void ApplyTrafficPolicy(const policy::TrafficPolicy& policy, v1::Cluster* cluster) {
  if (policy.load_balancer) ApplyLoadBalancer(*policy.load_balancer, cluster);
  if (policy.connection_pool) ApplyConnectionPool(*policy.connection_pool, cluster);
  if (policy.outlier_detection) ApplyOutlierDetection(*policy.outlier_detection, cluster);
  if (policy.health_check) ApplyHealthCheck(*policy.health_check, cluster);
  if (policy.retry_budget) ApplyRetryBudget(*policy.retry_budget, cluster);
}

}  // namespace outrigger::controlplane
