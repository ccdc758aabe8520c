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
