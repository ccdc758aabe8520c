// Building immutable snapshots from Bootstrap resources, and the errors for bad resources.
#include "proxy/config/snapshot.h"

#include <catch2/catch.hpp>

#include "outrigger/v1/config.pb.h"
#include "xds/yaml_proto.h"

using outrigger::proxy::BuildSnapshot;
using outrigger::proxy::ParseAddress;

namespace {
absl::StatusOr<std::shared_ptr<const outrigger::proxy::Snapshot>> FromYaml(const char* yaml) {
  outrigger::v1::Bootstrap b;
  auto s = outrigger::xds::YamlToProto(yaml, "test.yaml", &b);
  REQUIRE(s.ok());
  return BuildSnapshot(b, 7);
}
std::string ErrorOf(const char* yaml) {
  auto s = FromYaml(yaml);
  REQUIRE_FALSE(s.ok());
  return std::string(s.status().message());
}
}  // namespace

TEST_CASE("addresses parse and refuse names", "[config]") {
  CHECK(ParseAddress("127.0.0.1:80")->ToString() == "127.0.0.1:80");
  CHECK(ParseAddress("[::1]:8080")->ToString() == "[::1]:8080");
  CHECK(ParseAddress("localhost:1")->ip == "127.0.0.1");
  CHECK_FALSE(ParseAddress("example.com:80").ok());
  CHECK_FALSE(ParseAddress("127.0.0.1").ok());
  CHECK_FALSE(ParseAddress("127.0.0.1:99999").ok());
}

TEST_CASE("a full config builds", "[config]") {
  auto snap = FromYaml(R"(
listeners:
  - {name: out, address: "127.0.0.1:0", direction: OUTBOUND, route_config: r,
     http: {idle_timeout: 2s, max_request_headers_kb: 8}}
clusters:
  - {name: a, endpoints: [{address: "127.0.0.1:1"}]}
endpoints:
  - {cluster_name: a, endpoints: [{address: "127.0.0.1:2", weight: 5}]}
routes:
  - {name: r, virtual_hosts: [{domains: ["a"], routes: [{route: {cluster: a}}]}]}
)");
  REQUIRE(snap.ok());
  const auto& s = **snap;
  CHECK(s.version == 7);
  REQUIRE(s.FindCluster("a") != nullptr);
  CHECK(s.FindCluster("a")->endpoints.size() == 2);
  CHECK(s.FindCluster("a")->endpoints[1].weight == 5);
  const auto* l = s.FindListener("out");
  REQUIRE(l != nullptr);
  CHECK(l->http.idle_timeout == absl::Seconds(2));
  CHECK(l->http.max_request_headers_bytes == 8 * 1024);
  CHECK(l->routes->Match("a", "/") != nullptr);
  CHECK(s.config_dump_json.find("\"route_config\": \"r\"") != std::string::npos);
}

TEST_CASE("bad resources name resource and field", "[config]") {
  CHECK(ErrorOf("clusters: [{name: a}, {name: a}]").find("clusters[1].name: duplicate") == 0);
  CHECK(ErrorOf("clusters: [{name: a, endpoints: [{address: 'db:5432'}]}]")
            .find("clusters[0].endpoints[0].address:") == 0);
  CHECK(ErrorOf("endpoints: [{cluster_name: nope}]").find("unknown cluster 'nope'") !=
        std::string::npos);
  CHECK(ErrorOf("listeners: [{name: l, address: '127.0.0.1:1', cluster: nope}]")
            .find("listeners[0].cluster: unknown cluster 'nope'") == 0);
  CHECK(ErrorOf("listeners: [{name: l, address: '127.0.0.1:1'}]").find("needs route_config") !=
        std::string::npos);
  CHECK(ErrorOf("clusters: [{name: a, connect_timeout: -1s}]").find("must not be negative") !=
        std::string::npos);
  CHECK(ErrorOf("routes: [{name: r, virtual_hosts: [{domains: [x], routes: [{route: {cluster: "
                "zz}}]}]}]")
            .find("routes[0].virtual_hosts[0].routes[0].route.cluster: unknown cluster 'zz' "
                  "(route configuration 'r')") == 0);
}

TEST_CASE("traffic-management settings build with their defaults", "[config]") {
  auto snap = FromYaml(R"(
listeners:
  - {name: out, address: "127.0.0.1:0", route_config: r,
     local_rate_limit: {max_tokens: 10}}
clusters:
  - name: a
    lb_policy: RING_HASH
    hash_policy: [{header: X-User}, {source_ip: true}]
    circuit_breakers: {max_requests: 7}
    outlier_detection: {consecutive_5xx: 3, base_ejection_time: 2s}
    health_check: {path: /healthz, interval: 1s}
    retry_budget: {budget_percent: 25}
    healthy_panic_threshold: 0
    endpoints: [{address: "127.0.0.1:1"}]
  - {name: m, endpoints: [{address: "127.0.0.1:3"}]}
routes:
  - name: r
    virtual_hosts:
      - domains: ["*"]
        routes:
          - local_rate_limit: {max_tokens: 5, tokens_per_fill: 1, fill_interval: 0.5s}
            fault: {abort: {http_status: 503, percentage: 10}, delay: {fixed_delay: 1s}}
            route:
              cluster: a
              retry_policy: {retry_on: [reset], num_retries: 2, per_try_timeout: 0.2s,
                             retriable_status_codes: [409], base_interval: 0.01s}
              request_mirror_policies: [{cluster: m, percentage: 50}]
)");
  REQUIRE(snap.ok());
  const auto& a = *(*snap)->FindCluster("a");
  CHECK(a.lb_policy == outrigger::proxy::lb::Policy::kRingHash);
  REQUIRE(a.hash_policy.size() == 2);
  CHECK(a.hash_policy[0].name == "x-user");
  CHECK(a.breakers.max_requests == 7);
  CHECK(a.breakers.max_connections == 1024);  // default kept
  REQUIRE(a.outlier.has_value());
  CHECK(a.outlier->consecutive_5xx == 3);
  CHECK(a.outlier->base_ejection_ns == 2'000'000'000);
  CHECK(a.outlier->max_ejection_percent == 10);
  REQUIRE(a.health_check.has_value());
  CHECK(a.health_check->host == "a");
  CHECK(a.health_check->Passes(204));
  CHECK_FALSE(a.health_check->Passes(500));
  CHECK(a.retry_budget.percent == 25);
  CHECK(a.retry_budget.min_per_second == 10);
  CHECK(a.healthy_panic_threshold == 0);
  CHECK_FALSE((*snap)->FindCluster("m")->outlier.has_value());  // off unless configured

  const auto& listener = (*snap)->listeners[0];
  REQUIRE(listener.rate_limit.has_value());
  CHECK(listener.rate_limit->tokens_per_fill == 10);
  const auto* route = listener.routes->Match("x", "/");
  REQUIRE(route != nullptr);
  CHECK(route->retry.configured);
  CHECK(route->retry.num_retries == 2);
  CHECK(route->retry.on_reset);
  CHECK_FALSE(route->retry.on_5xx);
  CHECK(route->retry.RetriableStatus(409));
  CHECK_FALSE(route->retry.RetriableStatus(503));
  CHECK(route->retry.max_interval == absl::Milliseconds(100));
  REQUIRE(route->fault.has_value());
  CHECK(route->fault->abort_percent == 10);
  CHECK(route->fault->delay_percent == 100);
  REQUIRE(route->mirrors.size() == 1);
  CHECK(route->mirrors[0].percent == 50);
  REQUIRE(route->rate_limit.has_value());
  CHECK(route->rate_limit->id != listener.rate_limit->id);
}

TEST_CASE("a route without retry_policy retries once on connect failure only", "[config]") {
  auto snap = FromYaml(R"(
listeners: [{name: out, address: "127.0.0.1:0", route_config: r}]
clusters: [{name: a, endpoints: [{address: "127.0.0.1:1"}]}]
routes: [{name: r, virtual_hosts: [{domains: ["*"], routes: [{route: {cluster: a}}]}]}]
)");
  REQUIRE(snap.ok());
  const auto* route = (*snap)->listeners[0].routes->Match("x", "/");
  REQUIRE(route != nullptr);
  const outrigger::router::RetryPolicy& defaults = route->retry;
  CHECK(defaults.num_retries == 1);
  CHECK(defaults.on_connect_failure);
  CHECK_FALSE(defaults.on_reset);
  CHECK_FALSE(defaults.RetriableStatus(503));
  CHECK_FALSE(defaults.configured);
  CHECK(defaults.on_refused_stream);  // nothing was processed: as safe as a connect failure
  CHECK_FALSE(defaults.RetriableGrpc(14));
}

TEST_CASE("gRPC codes and refused streams as retry conditions", "[config]") {
  auto snap = FromYaml(R"(
listeners: [{name: out, address: "127.0.0.1:0", route_config: r}]
clusters: [{name: a, endpoints: [{address: "127.0.0.1:1"}]}]
routes:
  - name: r
    virtual_hosts:
      - domains: [grpc]
        routes: [{route: {cluster: a, retry_policy: {retry_on: [unavailable, resource-exhausted]}}}]
      - domains: [connect]
        routes: [{route: {cluster: a, retry_policy: {retry_on: [connect-failure]}}}]
      - domains: [refused]
        routes: [{route: {cluster: a, retry_policy: {retry_on: [refused-stream, internal]}}}]
      - domains: ["*"]
        routes: [{route: {cluster: a, retry_policy: {num_retries: 2}}}]
)");
  REQUIRE(snap.ok());
  const auto& routes = *(*snap)->listeners[0].routes;
  const auto& grpc = routes.Match("grpc", "/")->retry;
  CHECK(grpc.RetriableGrpc(14));
  CHECK(grpc.RetriableGrpc(8));
  CHECK_FALSE(grpc.RetriableGrpc(13));
  CHECK_FALSE(grpc.RetriableGrpc(0));
  CHECK_FALSE(grpc.RetriableGrpc(-1));
  CHECK_FALSE(grpc.RetriableStatus(503));
  CHECK_FALSE(grpc.on_refused_stream);  // only what is listed
  CHECK(routes.Match("connect", "/")->retry.on_refused_stream);  // implied by connect-failure
  const auto& refused = routes.Match("refused", "/")->retry;
  CHECK(refused.on_refused_stream);
  CHECK_FALSE(refused.on_connect_failure);
  CHECK(refused.RetriableGrpc(13));
  // retry_on not written: Istio's default, HTTP and gRPC.
  const auto& defaults = routes.Match("other", "/")->retry;
  CHECK(defaults.RetriableStatus(503));
  CHECK(defaults.RetriableGrpc(14));
  CHECK(defaults.RetriableGrpc(1));
  CHECK_FALSE(defaults.RetriableGrpc(13));
  CHECK(defaults.on_refused_stream);
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a}]
routes: [{name: r, virtual_hosts: [{domains: ["*"], routes: [{route: {cluster: a,
  retry_policy: {retry_on: [unavailable, not-found]}}}]}]}]
)"), Catch::Contains("retry_policy.retry_on[1]: unknown condition 'not-found' (5xx, "
                     "gateway-error, connect-failure, reset, refused-stream, "
                     "retriable-status-codes, cancelled, deadline-exceeded, internal, "
                     "resource-exhausted, unavailable)"));
}

TEST_CASE("bad traffic-management settings name the field", "[config]") {
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a, outlier_detection: {max_ejection_percent: 150}}]
)"), Catch::Contains("clusters[0].outlier_detection.max_ejection_percent"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a, health_check: {path: "healthz"}}]
)"), Catch::Contains("clusters[0].health_check.path: must start with '/'"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a, hash_policy: [{header: ""}]}]
)"), Catch::Contains("clusters[0].hash_policy[0]"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a, circuit_breakers: {max_requests: 0}}]
)"), Catch::Contains("clusters[0].circuit_breakers"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a}]
routes: [{name: r, virtual_hosts: [{domains: ["*"], routes: [{route: {cluster: a,
  retry_policy: {retry_on: [sometimes]}}}]}]}]
)"), Catch::Contains("routes[0].virtual_hosts[0].routes[0].route.retry_policy.retry_on[0]: "
                     "unknown condition 'sometimes'"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a}]
routes: [{name: r, virtual_hosts: [{domains: ["*"], routes: [{route: {cluster: a,
  request_mirror_policies: [{cluster: nope}]}}]}]}]
)"), Catch::Contains("request_mirror_policies[0].cluster: unknown cluster 'nope'"));
  CHECK_THAT(ErrorOf(R"(
clusters: [{name: a}]
routes: [{name: r, virtual_hosts: [{domains: ["*"], routes: [{route: {cluster: a},
  fault: {abort: {http_status: 99}}}]}]}]
)"), Catch::Contains("routes[0].virtual_hosts[0].routes[0].fault.abort.http_status"));
  CHECK_THAT(ErrorOf(R"(
listeners: [{name: l, address: "127.0.0.1:0", cluster: a, local_rate_limit: {max_tokens: 0}}]
clusters: [{name: a}]
)"), Catch::Contains("listeners[0].local_rate_limit.max_tokens"));
  CHECK_THAT(ErrorOf(R"(
listeners: [{name: l, address: "127.0.0.1:0", route_config: r, protocol: TCP}]
routes: [{name: r}]
)"), Catch::Contains("listeners[0].protocol: TCP and DETECT need `cluster`"));
  CHECK_THAT(ErrorOf(R"(
listeners: [{name: l, address: "127.0.0.1:0", cluster: a, protocol: DETECT,
             protocol_detection_timeout: 2s}]
clusters: [{name: a}]
)"), Catch::Contains("listeners[0].protocol_detection_timeout: must be more than 0 and at most 1s"));
}
