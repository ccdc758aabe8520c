// See cluster_policies.h.
#include "proxy/config/cluster_policies.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::proxy {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status Error(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Sets *out (nanoseconds) from a duration that must be positive when written.
absl::Status PositiveNs(bool has, const google::protobuf::Duration& d, absl::string_view field,
                        int64_t* out) {
  if (!has) return absl::OkStatus();
  const absl::Duration v = FromProto(d);
  if (v <= absl::ZeroDuration()) return Error(field, "must be positive");
  *out = absl::ToInt64Nanoseconds(v);
  return absl::OkStatus();
}

absl::Status Positive(bool has, const google::protobuf::Duration& d, absl::string_view field,
                      absl::Duration* out) {
  if (!has) return absl::OkStatus();
  const absl::Duration v = FromProto(d);
  if (v <= absl::ZeroDuration()) return Error(field, "must be positive");
  *out = v;
  return absl::OkStatus();
}

absl::Status Percent(uint32_t v, absl::string_view field) {
  return v > 100 ? Error(field, "a percentage, 0 to 100") : absl::OkStatus();
}

absl::Status OutlierFromProto(const v1::OutlierDetection& p, OutlierConfig* o) {
  if (p.has_consecutive_5xx()) o->consecutive_5xx = p.consecutive_5xx();
  if (p.has_consecutive_gateway_failure()) {
    o->consecutive_gateway_failure = p.consecutive_gateway_failure();
  }
  if (auto s = PositiveNs(p.has_interval(), p.interval(), "outlier_detection.interval",
                          &o->interval_ns); !s.ok()) return s;
  if (auto s = PositiveNs(p.has_base_ejection_time(), p.base_ejection_time(),
                          "outlier_detection.base_ejection_time", &o->base_ejection_ns);
      !s.ok()) return s;
  if (auto s = PositiveNs(p.has_max_ejection_time(), p.max_ejection_time(),
                          "outlier_detection.max_ejection_time", &o->max_ejection_ns);
      !s.ok()) return s;
  if (o->max_ejection_ns < o->base_ejection_ns) {
    if (p.has_max_ejection_time()) {
      return Error("outlier_detection.max_ejection_time", "must not be below base_ejection_time");
    }
    o->max_ejection_ns = o->base_ejection_ns;
  }
  if (p.has_max_ejection_percent()) {
    if (auto s = Percent(p.max_ejection_percent(), "outlier_detection.max_ejection_percent");
        !s.ok()) return s;
    o->max_ejection_percent = p.max_ejection_percent();
  }
  o->success_rate_minimum_hosts = p.success_rate_minimum_hosts();
  if (p.has_success_rate_request_volume()) {
    o->success_rate_request_volume = std::max(1u, p.success_rate_request_volume());
  }
  if (p.has_success_rate_stdev_factor()) o->success_rate_stdev_factor = p.success_rate_stdev_factor();
  return absl::OkStatus();
}

absl::Status HealthCheckFromProto(const v1::HealthCheck& p, absl::string_view cluster,
                                  HealthCheckConfig* h) {
  if (p.path().empty() || p.path()[0] != '/') {
    return Error("health_check.path", "must start with '/'");
  }
  h->path = p.path();
  h->host = p.host().empty() ? std::string(cluster) : p.host();
  if (auto s = Positive(p.has_interval(), p.interval(), "health_check.interval", &h->interval);
      !s.ok()) return s;
  if (auto s = Positive(p.has_timeout(), p.timeout(), "health_check.timeout", &h->timeout);
      !s.ok()) return s;
  if (p.has_unhealthy_threshold()) {
    if (p.unhealthy_threshold() == 0) {
      return Error("health_check.unhealthy_threshold", "must be at least 1");
    }
    h->unhealthy_threshold = p.unhealthy_threshold();
  }
  if (p.has_healthy_threshold()) {
    if (p.healthy_threshold() == 0) {
      return Error("health_check.healthy_threshold", "must be at least 1");
    }
    h->healthy_threshold = p.healthy_threshold();
  }
  for (int i = 0; i < p.expected_statuses_size(); ++i) {
    const uint32_t code = p.expected_statuses(i);
    if (code < 100 || code > 599) {
      return Error(absl::StrCat("health_check.expected_statuses[", i, "]"),
                   absl::StrCat(code, " is not an HTTP status"));
    }
    h->expected_statuses.push_back(code);
  }
  return absl::OkStatus();
}

}  // namespace

bool HealthCheckConfig::Passes(int status) const {
  if (expected_statuses.empty()) return status >= 200 && status < 400;
  for (uint32_t s : expected_statuses) {
    if (static_cast<int>(s) == status) return true;
  }
  return false;
}

absl::Status ClusterPoliciesFromProto(const v1::Cluster& p, ClusterConfig* c) {
  switch (p.lb_policy()) {
    case v1::Cluster::ROUND_ROBIN: c->lb_policy = lb::Policy::kRoundRobin; break;
    case v1::Cluster::LEAST_REQUEST: c->lb_policy = lb::Policy::kLeastRequest; break;
    case v1::Cluster::RING_HASH: c->lb_policy = lb::Policy::kRingHash; break;
    case v1::Cluster::MAGLEV: c->lb_policy = lb::Policy::kMaglev; break;
    case v1::Cluster::PEAK_EWMA: c->lb_policy = lb::Policy::kPeakEwma; break;
    case v1::Cluster::RANDOM: c->lb_policy = lb::Policy::kRandom; break;
    default: return Error("lb_policy", "unknown load balancer");
  }
  for (int i = 0; i < p.hash_policy_size(); ++i) {
    const auto& h = p.hash_policy(i);
    HashPolicyConfig hp;
    switch (h.policy_specifier_case()) {
      case v1::HashPolicy::kHeader:
        hp.kind = HashPolicyConfig::Kind::kHeader;
        hp.name = absl::AsciiStrToLower(h.header());
        break;
      case v1::HashPolicy::kCookie:
        hp.kind = HashPolicyConfig::Kind::kCookie;
        hp.name = h.cookie();
        break;
      case v1::HashPolicy::kSourceIp:
        hp.kind = HashPolicyConfig::Kind::kSourceIp;
        break;
      default:
        return Error(absl::StrCat("hash_policy[", i, "]"), "needs header, cookie or source_ip");
    }
    if (hp.kind != HashPolicyConfig::Kind::kSourceIp && hp.name.empty()) {
      return Error(absl::StrCat("hash_policy[", i, "]"), "the name must not be empty");
    }
    c->hash_policy.push_back(std::move(hp));
  }
  if (p.has_circuit_breakers()) {
    const auto& b = p.circuit_breakers();
    if (b.has_max_connections()) c->breakers.max_connections = b.max_connections();
    if (b.has_max_pending_requests()) c->breakers.max_pending_requests = b.max_pending_requests();
    if (b.has_max_requests()) c->breakers.max_requests = b.max_requests();
    if (b.has_max_retries()) c->breakers.max_retries = b.max_retries();
    if (c->breakers.max_connections == 0 || c->breakers.max_requests == 0 ||
        c->breakers.max_pending_requests == 0) {
      return Error("circuit_breakers", "max_connections, max_pending_requests and max_requests "
                                       "must be at least 1");
    }
  }
  if (p.has_outlier_detection()) {
    OutlierConfig o;
    if (auto s = OutlierFromProto(p.outlier_detection(), &o); !s.ok()) return s;
    c->outlier = o;
  }
  if (p.has_health_check()) {
    HealthCheckConfig h;
    if (auto s = HealthCheckFromProto(p.health_check(), c->name, &h); !s.ok()) return s;
    c->health_check = std::move(h);
  }
  if (p.has_retry_budget()) {
    const auto& b = p.retry_budget();
    if (b.has_budget_percent()) {
      if (b.budget_percent() < 0 || b.budget_percent() > 100) {
        return Error("retry_budget.budget_percent", "a percentage, 0 to 100");
      }
      c->retry_budget.percent = b.budget_percent();
    }
    if (b.has_min_retries_per_second()) {
      c->retry_budget.min_per_second = b.min_retries_per_second();
    }
    if (auto s = Positive(b.has_ttl(), b.ttl(), "retry_budget.ttl", &c->retry_budget.ttl);
        !s.ok()) return s;
  }
  if (p.has_healthy_panic_threshold()) {
    if (auto s = Percent(p.healthy_panic_threshold(), "healthy_panic_threshold"); !s.ok()) {
      return s;
    }
    c->healthy_panic_threshold = p.healthy_panic_threshold();
  }
  if (auto s = Positive(p.has_ewma_decay(), p.ewma_decay(), "ewma_decay", &c->ewma_decay);
      !s.ok()) return s;
  c->http2 = p.upstream_protocol() == v1::Cluster::HTTP2;
  return absl::OkStatus();
}

}  // namespace outrigger::proxy
