// The outrigger.dev/v1alpha1 kinds of traffic management (controlplane/policy/kinds/
// traffic_policy.cc, http_fault.cc, local_rate_limit.cc): valid documents load into the right
// structs, leaving unwritten members unset; every check reports FILE:LINE and the field path.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/loader.h"
#include "tests/unit/controlplane/policy_checks.h"

namespace outrigger::policy {
namespace {

using testing::HasError;
using testing::PolicyErrorsOf;
using testing::Show;
using testing::Where;

const char kShop[] = R"(apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog-v2, namespace: shop}
spec:
  selector: {app: catalog, version: v2}
  ports: [{name: http, port: 80}]
---
)";

// The line of `marker` in the last document of `text`, as an error prefix "p.yaml:LINE:".
std::string LineOf(const std::string& text, const std::string& marker) {
  const size_t doc = text.rfind("apiVersion:");
  const std::string where = Where(text, marker, text.substr(doc, 40));
  return where.substr(0, where.rfind(':') + 1);
}

struct Case {
  const char* what;
  std::string doc;       // one document, appended to kShop
  std::string marker;    // text on the line the error must point at
  std::string path;      // the field path the error names
  std::string fragment;  // part of the problem
};

void CheckCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string text = absl::StrCat(kShop, c.doc);
    const std::vector<std::string> errors = PolicyErrorsOf(text);
    INFO(Show(errors));
    const std::string prefix = LineOf(text, c.marker);
    INFO("expected at " << prefix << " " << c.path);
    CHECK(std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
      return absl::StartsWith(e, prefix) && absl::StrContains(e, absl::StrCat(" ", c.path, ": ")) &&
             absl::StrContains(e, c.fragment);
    }));
  }
}

std::string Policy(const std::string& spec_rest, const std::string& target = "catalog") {
  return absl::StrCat(
      "apiVersion: outrigger.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: tp, namespace: "
      "shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: ",
      target, "}\n", spec_rest);
}

}  // namespace

TEST_CASE("a TrafficPolicy loads every field", "[policy][traffic]") {
  const std::string text = absl::StrCat(kShop, R"(apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: catalog, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
  loadBalancer:
    type: RingHash
    consistentHash: {header: X-User}
    panicThreshold: 50
  connectionPool:
    connectTimeout: 5s
    idleTimeout: 4s
    maxIdleConnectionsPerHost: 64
    maxConnections: 1024
    maxPendingRequests: 512
    maxRequests: 2048
    maxRetries: 0
  outlierDetection:
    consecutive5xxErrors: 5
    consecutiveGatewayErrors: 0
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionTime: 300s
    maxEjectionPercent: 10
    successRate: {requestVolume: 100, stdevFactor: 1900}
  healthCheck: {path: /healthz, interval: 5s, timeout: 1s, unhealthyThreshold: 3,
                healthyThreshold: 2, expectedStatuses: [200, 204], host: "catalog.internal:8080"}
  retryBudget: {percent: 20.5, minRetriesPerSecond: 10, ttl: 10s}
  rateLimit: {maxTokens: 100, tokensPerFill: 50, fillInterval: 1s}
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: catalog-v2, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog-v2}
  loadBalancer: {type: PeakEWMA, ewmaDecay: 5s}
)");
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());
  REQUIRE(set.traffic_policies.size() == 2);
  const TrafficPolicy* tp = set.TrafficPolicyFor({"shop", "catalog"});
  REQUIRE(tp != nullptr);
  CHECK(tp->meta.key() == ObjectKey{"shop", "catalog"});
  CHECK(tp->target() == ObjectKey{"shop", "catalog"});

  REQUIRE(tp->load_balancer);
  CHECK(tp->load_balancer->type == LoadBalancerType::kRingHash);
  REQUIRE(tp->load_balancer->consistent_hash);
  CHECK(tp->load_balancer->consistent_hash->source == ConsistentHash::Source::kHeader);
  CHECK(tp->load_balancer->consistent_hash->name == "x-user");  // lower-cased
  CHECK(tp->load_balancer->panic_threshold == 50u);
  CHECK_FALSE(tp->load_balancer->ewma_decay);

  REQUIRE(tp->connection_pool);
  const ConnectionPoolSettings& pool = *tp->connection_pool;
  CHECK(pool.connect_timeout == absl::Seconds(5));
  CHECK(pool.idle_timeout == absl::Seconds(4));
  CHECK(pool.max_idle_connections_per_host == 64u);
  CHECK(pool.max_connections == 1024u);
  CHECK(pool.max_pending_requests == 512u);
  CHECK(pool.max_requests == 2048u);
  CHECK(pool.max_retries == 0u);

  REQUIRE(tp->outlier_detection);
  const OutlierDetectionSettings& od = *tp->outlier_detection;
  CHECK(od.consecutive_5xx_errors == 5u);
  CHECK(od.consecutive_gateway_errors == 0u);
  CHECK(od.interval == absl::Seconds(10));
  CHECK(od.base_ejection_time == absl::Seconds(30));
  CHECK(od.max_ejection_time == absl::Seconds(300));
  CHECK(od.max_ejection_percent == 10u);
  REQUIRE(od.success_rate);
  CHECK(od.success_rate->minimum_hosts == 5);  // defaulted: writing successRate turns it on
  CHECK(od.success_rate->request_volume == 100u);
  CHECK(od.success_rate->stdev_factor == 1900u);

  REQUIRE(tp->health_check);
  CHECK(tp->health_check->path == "/healthz");
  CHECK(tp->health_check->interval == absl::Seconds(5));
  CHECK(tp->health_check->timeout == absl::Seconds(1));
  CHECK(tp->health_check->unhealthy_threshold == 3u);
  CHECK(tp->health_check->healthy_threshold == 2u);
  CHECK(tp->health_check->expected_statuses == std::vector<uint32_t>{200, 204});
  CHECK(tp->health_check->host == "catalog.internal:8080");

  REQUIRE(tp->retry_budget);
  CHECK(tp->retry_budget->percent == 20.5);
  CHECK(tp->retry_budget->min_retries_per_second == 10u);
  CHECK(tp->retry_budget->ttl == absl::Seconds(10));

  REQUIRE(tp->rate_limit);
  CHECK(tp->rate_limit->max_tokens == 100);
  CHECK(tp->rate_limit->tokens_per_fill == 50u);
  CHECK(tp->rate_limit->fill_interval == absl::Seconds(1));

  // What is not written stays unset, for the proxies' defaults.
  const TrafficPolicy* v2 = set.TrafficPolicyFor({"shop", "catalog-v2"});
  REQUIRE(v2 != nullptr);
  CHECK(v2->load_balancer->type == LoadBalancerType::kPeakEwma);
  CHECK(v2->load_balancer->ewma_decay == absl::Seconds(5));
  CHECK_FALSE(v2->load_balancer->panic_threshold);
  CHECK_FALSE(v2->load_balancer->consistent_hash);
  CHECK_FALSE(v2->connection_pool);
  CHECK_FALSE(v2->outlier_detection);
  CHECK_FALSE(v2->health_check);
  CHECK_FALSE(v2->retry_budget);
  CHECK_FALSE(v2->rate_limit);

  CHECK(set.CountByKind() ==
        std::vector<std::pair<std::string, int>>{{"Service", 2}, {"TrafficPolicy", 2}});
}

TEST_CASE("consistent hashing on a cookie or the source IP", "[policy][traffic]") {
  for (const char* hash : {"{cookie: session}", "{sourceIP: true}"}) {
    INFO(hash);
    PolicyErrors errors;
    PolicySet set = BuildPolicy(
        {{"p.yaml", absl::StrCat(kShop, Policy(absl::StrCat("  loadBalancer: {type: Maglev, "
                                                            "consistentHash: ",
                                                            hash, "}\n")))}},
        &errors);
    INFO(Show(errors.Sorted()));
    REQUIRE(errors.empty());
    const LoadBalancerSettings& lb = *set.TrafficPolicyFor({"shop", "catalog"})->load_balancer;
    CHECK(lb.type == LoadBalancerType::kMaglev);
    if (absl::StrContains(hash, "cookie")) {
      CHECK(lb.consistent_hash->source == ConsistentHash::Source::kCookie);
      CHECK(lb.consistent_hash->name == "session");
    } else {
      CHECK(lb.consistent_hash->source == ConsistentHash::Source::kSourceIp);
    }
  }
}

TEST_CASE("HTTPFault and LocalRateLimit load", "[policy][traffic]") {
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", R"(apiVersion: outrigger.dev/v1alpha1
kind: HTTPFault
metadata: {name: chaos, namespace: shop}
spec:
  delay: {fixedDelay: 2s, percentage: 10}
  abort: {httpStatus: 503, percentage: 5.5}
---
apiVersion: outrigger.dev/v1alpha1
kind: HTTPFault
metadata: {name: slow}
spec:
  delay: {fixedDelay: 150ms}
---
apiVersion: outrigger.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: gentle, namespace: shop}
spec: {maxTokens: 100, tokensPerFill: 10, fillInterval: 500ms}
---
apiVersion: outrigger.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: burst}
spec: {maxTokens: 5}
)"}},
                              &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());
  const HttpFault* chaos = set.FindHttpFault({"shop", "chaos"});
  REQUIRE(chaos != nullptr);
  REQUIRE(chaos->delay);
  CHECK(chaos->delay->fixed_delay == absl::Seconds(2));
  CHECK(chaos->delay->percentage == 10);
  REQUIRE(chaos->abort);
  CHECK(chaos->abort->http_status == 503);
  CHECK(chaos->abort->percentage == 5.5);
  const HttpFault* slow = set.FindHttpFault({"default", "slow"});
  REQUIRE(slow != nullptr);
  CHECK(slow->delay->fixed_delay == absl::Milliseconds(150));
  CHECK(slow->delay->percentage == 100);  // the default
  CHECK_FALSE(slow->abort);

  const LocalRateLimit* gentle = set.FindLocalRateLimit({"shop", "gentle"});
  REQUIRE(gentle != nullptr);
  CHECK(gentle->bucket.max_tokens == 100);
  CHECK(gentle->bucket.tokens_per_fill == 10u);
  CHECK(gentle->bucket.fill_interval == absl::Milliseconds(500));
  const LocalRateLimit* burst = set.FindLocalRateLimit({"default", "burst"});
  REQUIRE(burst != nullptr);
  CHECK(burst->bucket.max_tokens == 5);
  CHECK_FALSE(burst->bucket.tokens_per_fill);
  CHECK_FALSE(burst->bucket.fill_interval);
}

TEST_CASE("TrafficPolicy errors name the file, line and field", "[policy][traffic][errors]") {
  CheckCases({
      {"unknown field", Policy("  loadBalancer:\n    typo: 1\n"), "typo", "spec.loadBalancer.typo",
       "unknown field 'typo'"},
      {"targetRef has no namespace",
       "apiVersion: outrigger.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: tp}\nspec:\n"
       "  targetRef:\n    kind: Service\n    name: catalog\n    namespace: shop\n",
       "namespace: shop", "spec.targetRef.namespace", "unknown field"},
      {"no targetRef",
       "apiVersion: outrigger.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: tp}\nspec:\n"
       "  retryBudget: {percent: 10}\n",
       "retryBudget", "spec.targetRef", "required"},
      {"targetRef kind",
       Policy("", "catalog").replace(Policy("").find("kind: Service"), 13, "kind: Deployment"),
       "Deployment", "spec.targetRef.kind", "targets a Service"},
      {"target not defined", Policy("  retryBudget: {percent: 10}\n", "nope"), "nope",
       "spec.targetRef.name", "Service shop/nope is not defined"},
      {"load balancer type", Policy("  loadBalancer:\n    type: Fastest\n"), "Fastest",
       "spec.loadBalancer.type", "LeastRequest"},
      {"consistentHash without hashing",
       Policy("  loadBalancer:\n    type: LeastRequest\n    consistentHash:\n      header: x\n"),
       "header: x", "spec.loadBalancer.consistentHash", "only for type RingHash or Maglev"},
      {"hashing without consistentHash", Policy("  loadBalancer:\n    type: RingHash\n"),
       "RingHash", "spec.loadBalancer.consistentHash", "required with type RingHash"},
      {"two hash sources",
       Policy("  loadBalancer:\n    type: Maglev\n    consistentHash:\n      header: x\n"
              "      cookie: y\n"),
       "header: x", "spec.loadBalancer.consistentHash", "exactly one of header, cookie"},
      {"bad header name",
       Policy("  loadBalancer:\n    type: Maglev\n    consistentHash:\n      header: \"a b\"\n"),
       "a b", "spec.loadBalancer.consistentHash.header", "not a valid HTTP header name"},
      {"panic threshold", Policy("  loadBalancer:\n    panicThreshold: 150\n"), "150",
       "spec.loadBalancer.panicThreshold", "150 is out of range (0 to 100)"},
      {"ewmaDecay without PeakEWMA",
       Policy("  loadBalancer:\n    type: LeastRequest\n    ewmaDecay: 10s\n"), "10s",
       "spec.loadBalancer.ewmaDecay", "only for type PeakEWMA"},
      {"ewmaDecay 0s", Policy("  loadBalancer:\n    type: PeakEWMA\n    ewmaDecay: 0s\n"), "0s",
       "spec.loadBalancer.ewmaDecay", "must be longer than 0"},
      {"connectTimeout 0s", Policy("  connectionPool:\n    connectTimeout: 0s\n"), "0s",
       "spec.connectionPool.connectTimeout", "must be longer than 0"},
      {"idleTimeout without unit", Policy("  connectionPool:\n    idleTimeout: 4\n"), "idleTimeout",
       "spec.connectionPool.idleTimeout", "no unit"},
      {"maxConnections 0", Policy("  connectionPool:\n    maxConnections: 0\n"), "maxConn",
       "spec.connectionPool.maxConnections", "at least 1"},
      {"maxIdleConnectionsPerHost -1",
       Policy("  connectionPool:\n    maxIdleConnectionsPerHost: -1\n"), "-1",
       "spec.connectionPool.maxIdleConnectionsPerHost", "at least 1"},
      {"maxRequests not a number", Policy("  connectionPool:\n    maxRequests: many\n"), "many",
       "spec.connectionPool.maxRequests", ""},
      {"maxEjectionPercent", Policy("  outlierDetection:\n    maxEjectionPercent: 101\n"), "101",
       "spec.outlierDetection.maxEjectionPercent", "0 to 100"},
      {"base > max ejection time",
       Policy("  outlierDetection:\n    baseEjectionTime: 60s\n    maxEjectionTime: 30s\n"), "30s",
       "spec.outlierDetection.maxEjectionTime",
       "baseEjectionTime 1m is longer than maxEjectionTime 30s"},
      {"base > default max ejection time",
       Policy("  outlierDetection:\n    baseEjectionTime: 10m\n"), "10m",
       "spec.outlierDetection.baseEjectionTime", "maxEjectionTime 5m (the default)"},
      {"interval 0s", Policy("  outlierDetection:\n    interval: 0s\n"), "0s",
       "spec.outlierDetection.interval", "longer than 0"},
      {"successRate minimumHosts",
       Policy("  outlierDetection:\n    successRate:\n      minimumHosts: 0\n"), "minimumHosts",
       "spec.outlierDetection.successRate.minimumHosts", "at least 1"},
      {"negative consecutive5xxErrors",
       Policy("  outlierDetection:\n    consecutive5xxErrors: -2\n"), "-2",
       "spec.outlierDetection.consecutive5xxErrors", "at least 0"},
      {"health check path", Policy("  healthCheck:\n    path: healthz\n"), "healthz",
       "spec.healthCheck.path", "must start with '/'"},
      {"health check without path", Policy("  healthCheck:\n    interval: 5s\n"), "interval",
       "spec.healthCheck.path", "required"},
      {"expected status",
       Policy("  healthCheck:\n    path: /h\n    expectedStatuses: [200, 700]\n"), "700",
       "spec.healthCheck.expectedStatuses[1]", "100 to 599"},
      {"unhealthyThreshold 0", Policy("  healthCheck:\n    path: /h\n    unhealthyThreshold: 0\n"),
       "unhealthy", "spec.healthCheck.unhealthyThreshold", "at least 1"},
      {"health check timeout 0s", Policy("  healthCheck:\n    path: /h\n    timeout: 0ms\n"), "0ms",
       "spec.healthCheck.timeout", "longer than 0"},
      {"health check host", Policy("  healthCheck:\n    path: /h\n    host: \"a b\"\n"), "a b",
       "spec.healthCheck.host", "not a host name"},
      {"retry budget percent", Policy("  retryBudget:\n    percent: 120\n"), "120",
       "spec.retryBudget.percent", "not a percentage"},
      {"retry budget ttl", Policy("  retryBudget:\n    ttl: 0s\n"), "0s", "spec.retryBudget.ttl",
       "longer than 0"},
      {"rate limit without maxTokens", Policy("  rateLimit:\n    tokensPerFill: 5\n"),
       "tokensPerFill", "spec.rateLimit.maxTokens", "required"},
      {"rate limit fillInterval", Policy("  rateLimit:\n    maxTokens: 5\n    fillInterval: 0s\n"),
       "0s", "spec.rateLimit.fillInterval", "longer than 0"},
      {"rate limit tokensPerFill", Policy("  rateLimit:\n    maxTokens: 5\n    tokensPerFill: 0\n"),
       "tokensPerFill", "spec.rateLimit.tokensPerFill", "at least 1"},
  });
}

TEST_CASE("two TrafficPolicies for one Service: the error names both", "[policy][traffic]") {
  const std::string text = absl::StrCat(kShop, Policy("  retryBudget: {percent: 10}\n"), R"(---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: other, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
)");
  const std::vector<std::string> errors = PolicyErrorsOf(text);
  INFO(Show(errors));
  REQUIRE(errors.size() == 1);
  // At the second policy's targetRef, naming the first's.
  CHECK(
      HasError(errors, Where(text, "catalog}", "name: other"),
               "spec.targetRef.name: Service shop/catalog already has TrafficPolicy shop/tp (at " +
                   Where(text, "catalog}", "kind: TrafficPolicy")));
  // A policy per version: catalog-v2 may have its own.
  CHECK(PolicyErrorsOf(absl::StrCat(kShop, Policy("  retryBudget: {percent: 10}\n"), "---\n",
                                    Policy("  retryBudget: {percent: 5}\n", "catalog-v2")
                                        .replace(Policy("").find("name: tp"), 8, "name: v2")))
            .empty());
}

TEST_CASE("HTTPFault and LocalRateLimit errors", "[policy][traffic][errors]") {
  const std::string fault =
      "apiVersion: outrigger.dev/v1alpha1\nkind: HTTPFault\nmetadata: "
      "{name: f, namespace: shop}\nspec:\n";
  const std::string limit =
      "apiVersion: outrigger.dev/v1alpha1\nkind: LocalRateLimit\nmetadata: "
      "{name: l, namespace: shop}\nspec:\n";
  CheckCases({
      {"fault with neither", fault + "  {}\n", "{}", "spec", "needs a delay, an abort or both"},
      {"delay without fixedDelay", fault + "  delay:\n    percentage: 10\n", "percentage",
       "spec.delay.fixedDelay", "required"},
      {"delay percentage", fault + "  delay:\n    fixedDelay: 1s\n    percentage: 150\n", "150",
       "spec.delay.percentage", "not a percentage"},
      {"delay 0s", fault + "  delay:\n    fixedDelay: 0s\n", "0s", "spec.delay.fixedDelay",
       "longer than 0"},
      {"abort status", fault + "  abort:\n    httpStatus: 100\n", "100", "spec.abort.httpStatus",
       "200 to 599"},
      {"abort without status", fault + "  abort:\n    percentage: 1\n", "percentage",
       "spec.abort.httpStatus", "required"},
      {"fault unknown field", fault + "  abort:\n    status: 503\n", "status", "spec.abort.status",
       "unknown field"},
      {"limit maxTokens 0", limit + "  maxTokens: 0\n", "maxTokens", "spec.maxTokens",
       "at least 1"},
      {"limit without maxTokens", limit + "  fillInterval: 1s\n", "fillInterval", "spec.maxTokens",
       "required"},
      {"limit fillInterval", limit + "  maxTokens: 1\n  fillInterval: 1.5s\n", "1.5s",
       "spec.fillInterval", "fractions"},
      {"limit unknown field", limit + "  maxTokens: 1\n  burst: 2\n", "burst", "spec.burst",
       "unknown field"},
  });
}

}  // namespace outrigger::policy
