// YAML -> protobuf loading: good input parses; every kind of bad input names file:line:col,
// the field path and the problem.
#include "xds/yaml_proto.h"

#include <catch2/catch.hpp>

#include "outrigger/v1/config.pb.h"

using outrigger::xds::YamlToProto;

namespace {
std::string ErrorOf(const std::string& yaml) {
  outrigger::v1::Bootstrap b;
  auto s = YamlToProto(yaml, "mesh.yaml", &b);
  REQUIRE_FALSE(s.ok());
  return std::string(s.message());
}
}  // namespace

TEST_CASE("valid YAML with snake_case and camelCase names parses", "[yaml]") {
  outrigger::v1::Bootstrap b;
  auto s = YamlToProto(R"(
clusters:
  - name: reviews
    connect_timeout: 0.25s
    idleTimeout: 3s
    endpoints:
      - address: 127.0.0.1:9080
        weight: 3
        labels: {version: 2}
routes:
  - name: outbound
    virtualHosts:
      - domains: ["reviews"]
        routes:
          - match: {prefix: /}
            route:
              weighted_clusters:
                clusters: [{name: reviews, weight: 10}]
)", "mesh.yaml", &b);
  REQUIRE(s.ok());
  REQUIRE(b.clusters_size() == 1);
  CHECK(b.clusters(0).connect_timeout().nanos() == 250000000);
  CHECK(b.clusters(0).idle_timeout().seconds() == 3);
  CHECK(b.clusters(0).endpoints(0).weight() == 3);
  // A bare number for a string-valued map entry is kept as a string.
  CHECK(b.clusters(0).endpoints(0).labels().at("version") == "2");
  CHECK(b.routes(0).virtual_hosts(0).routes(0).route().weighted_clusters().clusters(0).weight() ==
        10);
}

TEST_CASE("unknown field names file, line, column and the known fields", "[yaml]") {
  std::string e = ErrorOf("clusters:\n  - name: a\n    conect_timeout: 1s\n");
  CHECK(e.find("mesh.yaml:3:5:") == 0);
  CHECK(e.find("clusters[0].conect_timeout") != std::string::npos);
  CHECK(e.find("unknown field 'conect_timeout'") != std::string::npos);
  CHECK(e.find("connect_timeout") != std::string::npos);  // listed among the known fields
}

TEST_CASE("bad value is reported at the value's line", "[yaml]") {
  std::string e = ErrorOf("clusters:\n  - name: a\n    connect_timeout: 5\n");
  CHECK(e.find("mesh.yaml:3:22:") == 0);
  CHECK(e.find("clusters[0].connect_timeout") != std::string::npos);
  CHECK(e.find("duration") != std::string::npos);
}

TEST_CASE("bad enum and negative unsigned are located", "[yaml]") {
  CHECK(ErrorOf("listeners:\n- name: x\n  direction: SIDEWAYS\n").find("mesh.yaml:3:14:") == 0);
  CHECK(ErrorOf("clusters:\n- endpoints:\n  - weight: -1\n").find("mesh.yaml:3:13:") == 0);
}

TEST_CASE("wrong shapes are errors", "[yaml]") {
  CHECK(ErrorOf("clusters: {name: a}\n").find("expected a list") != std::string::npos);
  CHECK(ErrorOf("clusters:\n  - [1, 2]\n").find("expected a mapping") != std::string::npos);
  CHECK(ErrorOf("- a\n- b\n").find("(top level)") != std::string::npos);
}

TEST_CASE("YAML syntax errors carry the position", "[yaml]") {
  std::string e = ErrorOf("clusters:\n  - name: [a\n");
  CHECK(e.find("mesh.yaml:") == 0);
  CHECK(e.find("invalid YAML") != std::string::npos);
}

TEST_CASE("missing file is a clear error", "[yaml]") {
  outrigger::v1::Bootstrap b;
  auto s = outrigger::xds::YamlFileToProto("/nonexistent/x.yaml", &b);
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.message()).find("/nonexistent/x.yaml: cannot open") == 0);
}
