// The `outrigger.dev/v1alpha1` `TrafficPolicy` kind: how callers send traffic to one Service
// (load balancing, connection pool and circuit breakers, outlier detection, active health checks,
// retry budget), applied to that Service's cluster in every proxy, and a rate limit its own
// sidecars enforce on what comes in. Its targetRef names a Service of its namespace (GEP-713);
// a Service has at most one TrafficPolicy. Members not written stay unset: the proxies' defaults
// apply, and the defaults quoted in messages are theirs.
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/duration.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/kind_support.h"
#include "controlplane/policy/kinds/token_bucket.h"

namespace outrigger::policy {
namespace {

// The proxies' outlier-detection ejection times, for the base <= max check.
constexpr absl::Duration kDefaultBaseEjection = absl::Seconds(30);
constexpr absl::Duration kDefaultMaxEjection = absl::Seconds(300);

constexpr std::pair<absl::string_view, LoadBalancerType> kLbTypes[] = {
    {"RoundRobin", LoadBalancerType::kRoundRobin},
    {"LeastRequest", LoadBalancerType::kLeastRequest},
    {"RingHash", LoadBalancerType::kRingHash},
    {"Maglev", LoadBalancerType::kMaglev},
    {"PeakEWMA", LoadBalancerType::kPeakEwma},
    {"Random", LoadBalancerType::kRandom},
};

std::optional<ConsistentHash> ConvertHash(const v1::ConsistentHashPolicy& in, FieldErrors* err) {
  const std::string path = "spec.loadBalancer.consistentHash";
  const int given = in.has_header() + in.has_cookie() + (in.has_source_i_p() && in.source_i_p());
  if (given != 1) {
    err->Add(path, absl::StrCat("needs exactly one of header, cookie and sourceIP: true (", given,
                                " given)"));
    return std::nullopt;
  }
  ConsistentHash out;
  if (in.has_header()) {
    err->Check(absl::StrCat(path, ".header"), CheckHeaderName(in.header()));
    out.source = ConsistentHash::Source::kHeader;
    out.name = absl::AsciiStrToLower(in.header());
  } else if (in.has_cookie()) {
    err->Check(absl::StrCat(path, ".cookie"), CheckCookieName(in.cookie()));
    out.source = ConsistentHash::Source::kCookie;
    out.name = in.cookie();
  } else {
    out.source = ConsistentHash::Source::kSourceIp;
  }
  return out;
}

LoadBalancerSettings ConvertLoadBalancer(const v1::LoadBalancerPolicy& in, FieldErrors* err) {
  LoadBalancerSettings out;
  if (!in.type().empty()) {
    for (const auto& [name, type] : kLbTypes) {
      if (name == in.type()) out.type = type;
    }
    if (!out.type) {
      err->Add("spec.loadBalancer.type",
               absl::StrCat("'", in.type(),
                            "' is not a load balancer type (RoundRobin, LeastRequest, RingHash, "
                            "Maglev, PeakEWMA or Random)"));
    }
  }
  const bool hashing =
      out.type == LoadBalancerType::kRingHash || out.type == LoadBalancerType::kMaglev;
  if (in.has_consistent_hash()) {
    if (!hashing && (out.type || in.type().empty())) {
      err->Add("spec.loadBalancer.consistentHash",
               absl::StrCat("only for type RingHash or Maglev (type is ",
                            in.type().empty() ? "RoundRobin, the default" : in.type(), ")"));
    }
    out.consistent_hash = ConvertHash(in.consistent_hash(), err);
  } else if (hashing) {
    err->Add("spec.loadBalancer.consistentHash",
             absl::StrCat("required with type ", in.type(),
                          ": what to hash ({header: NAME}, {cookie: NAME} or {sourceIP: true})"));
  }
  out.panic_threshold = RangeField("spec.loadBalancer.panicThreshold", in.has_panic_threshold(),
                                   in.panic_threshold(), 0, 100, err);
  if (!in.ewma_decay().empty()) {
    if (out.type != LoadBalancerType::kPeakEwma) {
      err->Add("spec.loadBalancer.ewmaDecay", "only for type PeakEWMA");
    }
    out.ewma_decay = PositiveDurationField("spec.loadBalancer.ewmaDecay", in.ewma_decay(), err);
  }
  return out;
}

ConnectionPoolSettings ConvertConnectionPool(const v1::ConnectionPoolPolicy& in, FieldErrors* err) {
  const std::string p = "spec.connectionPool";
  ConnectionPoolSettings out;
  out.connect_timeout =
      PositiveDurationField(absl::StrCat(p, ".connectTimeout"), in.connect_timeout(), err);
  out.idle_timeout = PositiveDurationField(absl::StrCat(p, ".idleTimeout"), in.idle_timeout(), err);
  out.max_idle_connections_per_host = RangeField(
      absl::StrCat(p, ".maxIdleConnectionsPerHost"), in.has_max_idle_connections_per_host(),
      in.max_idle_connections_per_host(), 1, kMaxCount, err);
  out.max_connections = RangeField(absl::StrCat(p, ".maxConnections"), in.has_max_connections(),
                                   in.max_connections(), 1, kMaxCount, err);
  out.max_pending_requests =
      RangeField(absl::StrCat(p, ".maxPendingRequests"), in.has_max_pending_requests(),
                 in.max_pending_requests(), 1, kMaxCount, err);
  out.max_requests = RangeField(absl::StrCat(p, ".maxRequests"), in.has_max_requests(),
                                in.max_requests(), 1, kMaxCount, err);
  // 0 is allowed: no retry may be in flight, which turns retries to this Service off.
  out.max_retries = RangeField(absl::StrCat(p, ".maxRetries"), in.has_max_retries(),
                               in.max_retries(), 0, kMaxCount, err);
  if (in.h2_upgrade_policy() == "UPGRADE") {
    out.h2_upgrade = true;
  } else if (in.h2_upgrade_policy() == "DO_NOT_UPGRADE") {
    out.h2_upgrade = false;
  } else if (!in.h2_upgrade_policy().empty() && in.h2_upgrade_policy() != "DEFAULT") {
    err->Add(absl::StrCat(p, ".h2UpgradePolicy"),
             absl::StrCat("'", in.h2_upgrade_policy(),
                          "' is not one of: UPGRADE, DO_NOT_UPGRADE, DEFAULT"));
  }
  return out;
}

OutlierDetectionSettings ConvertOutlierDetection(const v1::OutlierDetectionPolicy& in,
                                                 FieldErrors* err) {
  const std::string p = "spec.outlierDetection";
  OutlierDetectionSettings out;
  // 0 turns that kind of ejection off.
  out.consecutive_5xx_errors =
      RangeField(absl::StrCat(p, ".consecutive5xxErrors"), in.has_consecutive_5xx_errors(),
                 in.consecutive_5xx_errors(), 0, kMaxCount, err);
  out.consecutive_gateway_errors =
      RangeField(absl::StrCat(p, ".consecutiveGatewayErrors"), in.has_consecutive_gateway_errors(),
                 in.consecutive_gateway_errors(), 0, kMaxCount, err);
  out.interval = PositiveDurationField(absl::StrCat(p, ".interval"), in.interval(), err);
  out.base_ejection_time =
      PositiveDurationField(absl::StrCat(p, ".baseEjectionTime"), in.base_ejection_time(), err);
  out.max_ejection_time =
      PositiveDurationField(absl::StrCat(p, ".maxEjectionTime"), in.max_ejection_time(), err);
  const absl::Duration base = out.base_ejection_time.value_or(kDefaultBaseEjection);
  const absl::Duration max = out.max_ejection_time.value_or(kDefaultMaxEjection);
  if ((out.base_ejection_time || out.max_ejection_time) && base > max) {
    const std::string base_text = out.base_ejection_time
                                      ? FormatGatewayDuration(base)
                                      : absl::StrCat(FormatGatewayDuration(base), " (the default)");
    const std::string max_text = out.max_ejection_time
                                     ? FormatGatewayDuration(max)
                                     : absl::StrCat(FormatGatewayDuration(max), " (the default)");
    err->Add(
        absl::StrCat(p, out.max_ejection_time ? ".maxEjectionTime" : ".baseEjectionTime"),
        absl::StrCat("baseEjectionTime ", base_text, " is longer than maxEjectionTime ", max_text));
  }
  out.max_ejection_percent =
      RangeField(absl::StrCat(p, ".maxEjectionPercent"), in.has_max_ejection_percent(),
                 in.max_ejection_percent(), 0, 100, err);
  if (in.has_success_rate()) {
    const v1::SuccessRatePolicy& sr = in.success_rate();
    SuccessRateSettings s;
    if (auto n = RangeField(absl::StrCat(p, ".successRate.minimumHosts"), sr.has_minimum_hosts(),
                            sr.minimum_hosts(), 1, kMaxCount, err)) {
      s.minimum_hosts = *n;
    }
    s.request_volume = RangeField(absl::StrCat(p, ".successRate.requestVolume"),
                                  sr.has_request_volume(), sr.request_volume(), 1, kMaxCount, err);
    s.stdev_factor = RangeField(absl::StrCat(p, ".successRate.stdevFactor"), sr.has_stdev_factor(),
                                sr.stdev_factor(), 1, kMaxCount, err);
    out.success_rate = s;
  }
  return out;
}

// The Host header of health checks: a DNS name or an IP address, optionally with ":PORT".
std::string CheckHostHeader(absl::string_view host) {
  absl::string_view name = host;
  if (size_t colon = host.rfind(':'); colon != absl::string_view::npos && host.find(':') == colon) {
    int64_t port = 0;
    if (!absl::SimpleAtoi(host.substr(colon + 1), &port) || !CheckPort(port).empty()) {
      return absl::StrCat("'", host, "': '", host.substr(colon + 1), "' is not a port");
    }
    name = host.substr(0, colon);
  }
  if (CheckIpAddress(name, false).empty() || CheckDnsSubdomain(name).empty()) return "";
  return absl::StrCat("'", host,
                      "' is not a host name: a lower-case DNS name or an IPv4 address, optionally "
                      "with :PORT");
}

HealthCheckSettings ConvertHealthCheck(const v1::HealthCheckPolicy& in, FieldErrors* err) {
  const std::string p = "spec.healthCheck";
  HealthCheckSettings out;
  out.path = in.path();
  if (out.path.empty()) {
    err->Add(absl::StrCat(p, ".path"), "required: the path every host is asked (\"/healthz\")");
  } else if (out.path[0] != '/') {
    err->Add(absl::StrCat(p, ".path"), absl::StrCat("'", out.path, "' must start with '/'"));
  } else if (std::any_of(out.path.begin(), out.path.end(), [](char c) {
               return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
             })) {
    err->Add(absl::StrCat(p, ".path"),
             absl::StrCat("'", out.path, "' must not contain spaces or control characters"));
  }
  out.interval = PositiveDurationField(absl::StrCat(p, ".interval"), in.interval(), err);
  out.timeout = PositiveDurationField(absl::StrCat(p, ".timeout"), in.timeout(), err);
  out.unhealthy_threshold =
      RangeField(absl::StrCat(p, ".unhealthyThreshold"), in.has_unhealthy_threshold(),
                 in.unhealthy_threshold(), 1, kMaxCount, err);
  out.healthy_threshold =
      RangeField(absl::StrCat(p, ".healthyThreshold"), in.has_healthy_threshold(),
                 in.healthy_threshold(), 1, kMaxCount, err);
  std::set<int> seen;
  for (int i = 0; i < in.expected_statuses_size(); ++i) {
    const std::string item = Item(absl::StrCat(p, ".expectedStatuses"), i);
    const int code = in.expected_statuses(i);
    if (auto c = RangeField(item, true, code, 100, 599, err)) out.expected_statuses.push_back(*c);
    if (!seen.insert(code).second) err->Add(item, absl::StrCat(code, " is listed twice"));
  }
  if (!in.host().empty()) err->Check(absl::StrCat(p, ".host"), CheckHostHeader(in.host()));
  out.host = in.host();
  return out;
}

RetryBudgetSettings ConvertRetryBudget(const v1::RetryBudgetPolicy& in, FieldErrors* err) {
  const std::string p = "spec.retryBudget";
  RetryBudgetSettings out;
  out.percent = PercentField(absl::StrCat(p, ".percent"), in.has_percent(), in.percent(), err);
  out.min_retries_per_second =
      RangeField(absl::StrCat(p, ".minRetriesPerSecond"), in.has_min_retries_per_second(),
                 in.min_retries_per_second(), 0, kMaxCount, err);
  out.ttl = PositiveDurationField(absl::StrCat(p, ".ttl"), in.ttl(), err);
  return out;
}

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::TrafficPolicy msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  TrafficPolicy policy;
  policy.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::TrafficPolicySpec& spec = msg.spec();
  if (!spec.has_target_ref()) {
    err.Add("spec.targetRef",
            "required: the Service this policy applies to "
            "({group: \"\", kind: Service, name: ...})");
  } else {
    policy.target_name = TargetServiceName(spec.target_ref(), "a TrafficPolicy", &err);
  }
  if (spec.has_load_balancer())
    policy.load_balancer = ConvertLoadBalancer(spec.load_balancer(), &err);
  if (spec.has_connection_pool()) {
    policy.connection_pool = ConvertConnectionPool(spec.connection_pool(), &err);
  }
  if (spec.has_outlier_detection()) {
    policy.outlier_detection = ConvertOutlierDetection(spec.outlier_detection(), &err);
  }
  if (spec.has_health_check()) policy.health_check = ConvertHealthCheck(spec.health_check(), &err);
  if (spec.has_retry_budget()) policy.retry_budget = ConvertRetryBudget(spec.retry_budget(), &err);
  if (spec.has_rate_limit()) {
    policy.rate_limit = ConvertTokenBucket("spec.rateLimit", spec.rate_limit(), &err);
  }
  set->traffic_policies.emplace(policy.meta.key(), std::move(policy));
}

// The target Service must exist, and have no other TrafficPolicy (the second one, in file
// order, is the error; it names where the first is).
void Check(const PolicySet& set, PolicyErrors* errors) {
  std::map<ObjectKey, const TrafficPolicy*> by_target;
  for (const TrafficPolicy* p : InFileOrder(set, "TrafficPolicy", set.traffic_policies)) {
    const TrafficPolicy& policy = *p;
    if (policy.target_name.empty()) continue;  // reported already
    const ObjectKey target = policy.target();
    if (!CheckTargetServiceDefined(set, policy.meta, target, "a TrafficPolicy", errors)) continue;
    auto [first, fresh] = by_target.emplace(target, &policy);
    if (!fresh) {
      const TrafficPolicy& other = *first->second;
      errors->Add(*policy.meta.fields, "spec.targetRef.name",
                  absl::StrCat("Service ", target.ToString(), " already has TrafficPolicy ",
                               other.meta.key().ToString(), " (at ",
                               other.meta.fields->Locate("spec.targetRef.name")
                                   .value_or(other.meta.source.ToString()),
                               "); a Service takes one TrafficPolicy: merge them"));
    }
  }
}

}  // namespace

const PolicyKind& TrafficPolicyKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "TrafficPolicy", /*namespaced=*/true,
                               &Load, &Check};
  return kind;
}

}  // namespace outrigger::policy
