// What proxies receive for traffic policy (controlplane/mesh/view_builder.cc, cluster_policy.cc,
// route_policy.cc, inbound_policy.cc): a policy set in, the Cluster, RouteConfiguration and
// InboundPolicy resources out.
#include "controlplane/mesh/view_builder.h"

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_join.h"
#include "controlplane/policy/loader.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {
namespace {

const char kPolicy[] = R"(apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog-v1, namespace: shop}
spec:
  selector: {app: catalog, version: v1}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog-v2, namespace: shop}
spec:
  selector: {app: catalog, version: v2}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  selector: {app: checkout}
  ports: [{name: http, port: 80}]
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: catalog-v2, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog-v2}
  loadBalancer: {type: LeastRequest, panicThreshold: 0}
  connectionPool:
    connectTimeout: 2s
    idleTimeout: 3s
    maxIdleConnectionsPerHost: 16
    maxConnections: 100
    maxPendingRequests: 50
    maxRequests: 200
    maxRetries: 4
  outlierDetection:
    consecutive5xxErrors: 3
    consecutiveGatewayErrors: 2
    interval: 5s
    baseEjectionTime: 10s
    maxEjectionTime: 100s
    maxEjectionPercent: 50
    successRate: {minimumHosts: 3, requestVolume: 20, stdevFactor: 1500}
  healthCheck: {path: /healthz, interval: 2s, timeout: 500ms, unhealthyThreshold: 2,
                healthyThreshold: 1, expectedStatuses: [200, 204], host: catalog.internal}
  retryBudget: {percent: 25, minRetriesPerSecond: 5, ttl: 20s}
  rateLimit: {maxTokens: 10, tokensPerFill: 5, fillInterval: 2s}
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: catalog, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
  loadBalancer:
    type: RingHash
    consistentHash: {header: X-User}
  rateLimit: {maxTokens: 100}
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: checkout, namespace: shop}
spec:
  targetRef: {kind: Service, name: checkout}
  loadBalancer: {type: PeakEWMA, ewmaDecay: 7s}
  rateLimit: {maxTokens: 5, fillInterval: 100ms}
---
apiVersion: outrigger.dev/v1alpha1
kind: HTTPFault
metadata: {name: chaos, namespace: shop}
spec:
  delay: {fixedDelay: 2s, percentage: 10}
  abort: {httpStatus: 503, percentage: 5}
---
apiVersion: outrigger.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: gentle, namespace: shop}
spec: {maxTokens: 20, tokensPerFill: 2, fillInterval: 1s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - matches: [{path: {type: Exact, value: /api}}]
      filters:
        - type: ExtensionRef
          extensionRef: {group: outrigger.dev, kind: HTTPFault, name: chaos}
        - type: ExtensionRef
          extensionRef: {group: outrigger.dev, kind: LocalRateLimit, name: gentle}
        - type: RequestMirror
          requestMirror: {backendRef: {name: catalog-v2, port: 80}, percent: 50}
        - type: RequestMirror
          requestMirror:
            backendRef: {name: checkout, port: 80}
            fraction: {numerator: 1, denominator: 4}
      backendRefs:
        - {name: catalog-v1, port: 80, weight: 90}
        - {name: catalog-v2, port: 80, weight: 10}
      retry: {codes: [503], attempts: 2, backoff: 50ms}
      timeouts: {request: 2s, backendRequest: 500ms}
    - matches: [{path: {type: Exact, value: /slow}}]
      backendRefs: [{name: catalog-v1, port: 80}]
      timeouts: {backendRequest: 1s}
    - matches: [{path: {type: Exact, value: /plain}}]
      backendRefs: [{name: catalog-v1, port: 80}]
      retry:
        attempts: 3
        retryOn: [5xx, reset]
        codes: [429]
        maxBackoff: 1s
        retryNonIdempotent: true
        maxRetryBodyBytes: 1024
    - matches: [{path: {type: Exact, value: /defaults}}]
      backendRefs: [{name: catalog-v1, port: 80}]
      retry: {}
    - backendRefs: [{name: catalog-v1, port: 80}]
)";

v1::Node MakeNode(const std::string& id, const std::string& ns, const std::string& service,
                  const std::map<std::string, std::string>& labels) {
  v1::Node node;
  node.set_id(id);
  node.set_namespace_(ns);
  node.set_service(service);
  for (const auto& [k, v] : labels) (*node.mutable_labels())[k] = v;
  return node;
}

struct Fixture {
  explicit Fixture(const char* text = kPolicy) {
    policy::PolicyErrors errors;
    policy::PolicySet set = policy::BuildPolicy({{"p.yaml", text}}, &errors);
    INFO(absl::StrJoin(errors.Sorted(), "\n"));
    REQUIRE(errors.empty());
    views.SetPolicy(std::make_shared<const policy::PolicySet>(std::move(set)));
  }

  View Build(const v1::Node& node) { return views.Build(node, workloads, 1); }

  template <typename Message>
  std::map<std::string, Message> Unpack(const View& view, const char* type) {
    std::map<std::string, Message> out;
    for (const Resource& r : *view.Get(type).resources) {
      Message m;
      REQUIRE(r.body.UnpackTo(&m));
      out.emplace(r.name, m);
    }
    return out;
  }

  ViewBuilderImpl views;
  std::map<std::string, Workload> workloads;
};

const v1::Route& RouteByPath(const v1::RouteConfiguration& rc, const std::string& vhost,
                             const std::string& path) {
  for (const auto& vh : rc.virtual_hosts()) {
    if (vh.name() != vhost) continue;
    for (const auto& r : vh.routes()) {
      if (r.match().path() == path || (path == "/" && r.match().prefix() == "/")) return r;
    }
  }
  FAIL("no route " << path << " in " << vhost);
  static v1::Route none;
  return none;
}

}  // namespace

TEST_CASE("a TrafficPolicy sets its target Service's cluster", "[view][traffic]") {
  Fixture f;
  const View view = f.Build(MakeNode("p1", "shop", "frontend", {}));
  auto clusters = f.Unpack<v1::Cluster>(view, kClusterType);
  REQUIRE(clusters.size() == 4);

  const v1::Cluster& v2 = clusters.at("catalog-v2.shop");
  CHECK(v2.lb_policy() == v1::Cluster::LEAST_REQUEST);
  CHECK(v2.hash_policy_size() == 0);
  REQUIRE(v2.has_healthy_panic_threshold());
  CHECK(v2.healthy_panic_threshold() == 0);  // written as 0: sent as 0 (disables panic mode)
  CHECK(v2.connect_timeout().seconds() == 2);
  CHECK(v2.idle_timeout().seconds() == 3);
  CHECK(v2.max_idle_connections_per_host() == 16);
  CHECK(v2.circuit_breakers().max_connections() == 100);
  CHECK(v2.circuit_breakers().max_pending_requests() == 50);
  CHECK(v2.circuit_breakers().max_requests() == 200);
  CHECK(v2.circuit_breakers().max_retries() == 4);
  const v1::OutlierDetection& od = v2.outlier_detection();
  CHECK(od.consecutive_5xx() == 3);
  CHECK(od.consecutive_gateway_failure() == 2);
  CHECK(od.interval().seconds() == 5);
  CHECK(od.base_ejection_time().seconds() == 10);
  CHECK(od.max_ejection_time().seconds() == 100);
  CHECK(od.max_ejection_percent() == 50);
  CHECK(od.success_rate_minimum_hosts() == 3);
  CHECK(od.success_rate_request_volume() == 20);
  CHECK(od.success_rate_stdev_factor() == 1500);
  const v1::HealthCheck& hc = v2.health_check();
  CHECK(hc.path() == "/healthz");
  CHECK(hc.interval().seconds() == 2);
  CHECK(hc.timeout().nanos() == 500000000);
  CHECK(hc.unhealthy_threshold() == 2);
  CHECK(hc.healthy_threshold() == 1);
  CHECK(std::vector<uint32_t>(hc.expected_statuses().begin(), hc.expected_statuses().end()) ==
        std::vector<uint32_t>{200, 204});
  CHECK(hc.host() == "catalog.internal");
  CHECK(v2.retry_budget().budget_percent() == 25);
  CHECK(v2.retry_budget().min_retries_per_second() == 5);
  CHECK(v2.retry_budget().ttl().seconds() == 20);
  CHECK_FALSE(v2.has_ewma_decay());

  const v1::Cluster& catalog = clusters.at("catalog.shop");
  CHECK(catalog.lb_policy() == v1::Cluster::RING_HASH);
  REQUIRE(catalog.hash_policy_size() == 1);
  CHECK(catalog.hash_policy(0).header() == "x-user");
  // Not written: left unset for the proxies' defaults.
  CHECK_FALSE(catalog.has_healthy_panic_threshold());
  CHECK_FALSE(catalog.has_connect_timeout());
  CHECK_FALSE(catalog.has_circuit_breakers());
  CHECK_FALSE(catalog.has_outlier_detection());
  CHECK_FALSE(catalog.has_health_check());
  CHECK_FALSE(catalog.has_retry_budget());

  const v1::Cluster& checkout = clusters.at("checkout.shop");
  CHECK(checkout.lb_policy() == v1::Cluster::PEAK_EWMA);
  CHECK(checkout.ewma_decay().seconds() == 7);

  // A Service without a TrafficPolicy: a bare cluster.
  v1::Cluster bare;
  bare.set_name("catalog-v1.shop");
  CHECK(clusters.at("catalog-v1.shop").SerializeAsString() == bare.SerializeAsString());
}

TEST_CASE("h2UpgradePolicy: the Mesh's default, a TrafficPolicy's override, gRPC ports",
          "[view][traffic]") {
  Fixture f(R"(apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {h2UpgradePolicy: UPGRADE}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec: {selector: {app: legacy}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: rpc, namespace: shop}
spec: {selector: {app: rpc}, ports: [{name: grpc, port: 9000}]}
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: legacy, namespace: shop}
spec:
  targetRef: {kind: Service, name: legacy}
  connectionPool: {h2UpgradePolicy: DO_NOT_UPGRADE}
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: rpc, namespace: shop}
spec:
  targetRef: {kind: Service, name: rpc}
  connectionPool: {h2UpgradePolicy: DO_NOT_UPGRADE}
)");
  auto clusters = f.Unpack<v1::Cluster>(f.Build(MakeNode("p1", "shop", "frontend", {})),
                                         kClusterType);
  CHECK(clusters.at("web.shop").upstream_protocol() == v1::Cluster::HTTP2);      // the Mesh's
  CHECK(clusters.at("legacy.shop").upstream_protocol() == v1::Cluster::HTTP1);   // overridden
  CHECK(clusters.at("rpc.shop").upstream_protocol() == v1::Cluster::HTTP2);      // gRPC needs it

  policy::PolicyErrors errors;
  (void)policy::BuildPolicy({{"m.yaml", "apiVersion: outrigger.dev/v1alpha1\nkind: Mesh\n"
                                        "metadata: {name: mesh}\nspec: {h2UpgradePolicy: yes}\n"}},
                            &errors);
  CHECK_THAT(absl::StrJoin(errors.Sorted(), "\n"),
             Catch::Contains("spec.h2UpgradePolicy: 'yes' is not UPGRADE or DO_NOT_UPGRADE"));
}

TEST_CASE("HTTPRoute retry, backendRequest, mirrors and extension filters reach the routes",
          "[view][route]") {
  Fixture f;
  const View view = f.Build(MakeNode("p1", "shop", "frontend", {}));
  auto routes = f.Unpack<v1::RouteConfiguration>(view, kRouteType);
  const v1::RouteConfiguration& rc = routes.at("outbound");

  const v1::Route& api = RouteByPath(rc, "catalog.shop", "/api");
  REQUIRE(api.has_fault());
  CHECK(api.fault().delay().fixed_delay().seconds() == 2);
  CHECK(api.fault().delay().percentage() == 10);
  CHECK(api.fault().abort().http_status() == 503);
  CHECK(api.fault().abort().percentage() == 5);
  REQUIRE(api.has_local_rate_limit());
  CHECK(api.local_rate_limit().max_tokens() == 20);
  CHECK(api.local_rate_limit().tokens_per_fill() == 2);
  CHECK(api.local_rate_limit().fill_interval().seconds() == 1);
  const v1::RouteAction& action = api.route();
  CHECK(action.weighted_clusters().clusters_size() == 2);
  CHECK(action.timeout().seconds() == 2);
  const v1::RetryPolicy& rp = action.retry_policy();
  CHECK(rp.num_retries() == 2);
  CHECK(std::vector<std::string>(rp.retry_on().begin(), rp.retry_on().end()) ==
        std::vector<std::string>{"connect-failure", "reset", "retriable-status-codes"});
  CHECK(std::vector<uint32_t>(rp.retriable_status_codes().begin(),
                              rp.retriable_status_codes().end()) == std::vector<uint32_t>{503});
  CHECK(rp.base_interval().nanos() == 50000000);
  CHECK_FALSE(rp.has_max_interval());  // the proxies' 10 x base
  CHECK(rp.per_try_timeout().nanos() == 500000000);
  CHECK_FALSE(rp.retry_non_idempotent());
  CHECK_FALSE(rp.has_max_retry_body_bytes());
  REQUIRE(action.request_mirror_policies_size() == 2);
  CHECK(action.request_mirror_policies(0).cluster() == "catalog-v2.shop");
  CHECK(action.request_mirror_policies(0).percentage() == 50);
  CHECK(action.request_mirror_policies(1).cluster() == "checkout.shop");
  CHECK(action.request_mirror_policies(1).percentage() == 25);

  // backendRequest without retry: the proxies' default retry (one, on connect-failure) plus the
  // per-try timeout.
  const v1::RetryPolicy& slow = RouteByPath(rc, "catalog.shop", "/slow").route().retry_policy();
  CHECK(slow.num_retries() == 1);
  CHECK(std::vector<std::string>(slow.retry_on().begin(), slow.retry_on().end()) ==
        std::vector<std::string>{"connect-failure"});
  CHECK(slow.per_try_timeout().seconds() == 1);
  CHECK(slow.retriable_status_codes_size() == 0);

  // retryOn as written, plus retriable-status-codes for the codes.
  const v1::Route& plain_route = RouteByPath(rc, "catalog.shop", "/plain");
  CHECK_FALSE(plain_route.has_fault());
  CHECK_FALSE(plain_route.has_local_rate_limit());
  const v1::RetryPolicy& plain = plain_route.route().retry_policy();
  CHECK(plain.num_retries() == 3);
  CHECK(std::vector<std::string>(plain.retry_on().begin(), plain.retry_on().end()) ==
        std::vector<std::string>{"5xx", "reset", "retriable-status-codes"});
  CHECK(plain.retriable_status_codes(0) == 429);
  CHECK_FALSE(plain.has_base_interval());
  CHECK(plain.max_interval().seconds() == 1);
  CHECK(plain.retry_non_idempotent());
  CHECK(plain.max_retry_body_bytes() == 1024);
  CHECK_FALSE(plain.has_per_try_timeout());
  CHECK(plain_route.route().request_mirror_policies_size() == 0);

  // retry: {} is a policy with every default (the proxies': 1 retry on connect-failure, reset,
  // gateway-error).
  const v1::Route& defaults = RouteByPath(rc, "catalog.shop", "/defaults");
  REQUIRE(defaults.route().has_retry_policy());
  CHECK_FALSE(defaults.route().retry_policy().has_num_retries());
  CHECK(defaults.route().retry_policy().retry_on_size() == 0);

  // A rule without retry or backendRequest: no policy (the proxies retry once on connect-failure).
  CHECK_FALSE(RouteByPath(rc, "catalog.shop", "/").route().has_retry_policy());
  CHECK_FALSE(RouteByPath(rc, "checkout.shop", "/").route().has_retry_policy());
}

TEST_CASE("every proxy gets one InboundPolicy, named after its service", "[view][inbound]") {
  Fixture f;
  auto inbound = [&](const v1::Node& node) {
    auto policies = f.Unpack<v1::InboundPolicy>(f.Build(node), kInboundPolicyType);
    REQUIRE(policies.size() == 1);
    return policies.begin()->second;
  };
  // catalog v2: selected by catalog (rateLimit 100) and catalog-v2 (rateLimit 10): the more
  // specific selector wins.
  v1::InboundPolicy p = inbound(MakeNode("a", "shop", "catalog", {{"version", "v2"}}));
  CHECK(p.name() == "catalog.shop");
  REQUIRE(p.has_local_rate_limit());
  CHECK(p.local_rate_limit().max_tokens() == 10);
  CHECK(p.local_rate_limit().tokens_per_fill() == 5);
  CHECK(p.local_rate_limit().fill_interval().seconds() == 2);
  // catalog v1: only catalog's policy (catalog-v1 has none).
  p = inbound(MakeNode("b", "shop", "catalog", {{"version", "v1"}}));
  CHECK(p.name() == "catalog.shop");
  CHECK(p.local_rate_limit().max_tokens() == 100);
  CHECK(p.local_rate_limit().tokens_per_fill() == 0);  // unset: the proxies use maxTokens
  CHECK_FALSE(p.local_rate_limit().has_fill_interval());
  // Selected by its explicit app label too.
  p = inbound(MakeNode("c", "shop", "pay", {{"app", "checkout"}}));
  CHECK(p.name() == "pay.shop");
  CHECK(p.local_rate_limit().max_tokens() == 5);
  CHECK(p.local_rate_limit().fill_interval().nanos() == 100000000);
  // No policy selects it: an empty InboundPolicy, still named.
  p = inbound(MakeNode("d", "shop", "frontend", {}));
  CHECK(p.name() == "frontend.shop");
  CHECK_FALSE(p.has_local_rate_limit());
  // Another namespace's catalog is not selected by shop's Services.
  p = inbound(MakeNode("e", "other", "catalog", {{"version", "v2"}}));
  CHECK(p.name() == "catalog.other");
  CHECK_FALSE(p.has_local_rate_limit());

  // Two proxies of one namespace share the namespace's lists but not their inbound policies.
  const View v2 = f.Build(MakeNode("a", "shop", "catalog", {{"version", "v2"}}));
  const View v1 = f.Build(MakeNode("b", "shop", "catalog", {{"version", "v1"}}));
  CHECK(v2.Get(kClusterType).resources == v1.Get(kClusterType).resources);
  CHECK(v2.Get(kInboundPolicyType).version != v1.Get(kInboundPolicyType).version);
  CHECK(f.Build(MakeNode("a2", "shop", "catalog", {{"version", "v2"}}))
            .Get(kInboundPolicyType)
            .version == v2.Get(kInboundPolicyType).version);
}

}  // namespace outrigger::controlplane
