// Command-line sidecar shape -> Bootstrap resources.
#include "proxy/config/bootstrap.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "proxy/config/snapshot.h"

using outrigger::proxy::BuildBootstrap;
using outrigger::proxy::SidecarFlags;

TEST_CASE("--inbound and --app alone need no config file", "[bootstrap]") {
  SidecarFlags f;
  f.inbound = "127.0.0.1:0";
  f.app = "127.0.0.1:8080";
  auto b = BuildBootstrap(f);
  REQUIRE(b.ok());
  auto snap = outrigger::proxy::BuildSnapshot(*b, 1);
  REQUIRE(snap.ok());
  CHECK((*snap)->FindListener("inbound")->cluster == "local_app");
  CHECK((*snap)->FindCluster("local_app")->endpoints[0].address.port == 8080);
}

TEST_CASE("--outbound without a route table routes cluster names", "[bootstrap]") {
  const std::string path = "/tmp/outrigger_bootstrap_test.yaml";
  std::ofstream(path) << "clusters:\n- {name: reviews, endpoints: [{address: '127.0.0.1:1'}]}\n";
  SidecarFlags f;
  f.config_path = path;
  f.outbound = "127.0.0.1:0";
  auto b = BuildBootstrap(f);
  REQUIRE(b.ok());
  auto snap = outrigger::proxy::BuildSnapshot(*b, 1);
  REQUIRE(snap.ok());
  CHECK((*snap)->FindListener("outbound")->routes->Match("reviews:9080", "/")->clusters[0].name ==
        "reviews");
  std::remove(path.c_str());
}

TEST_CASE("semantic errors point at the config file's line", "[bootstrap]") {
  const std::string path = "/tmp/outrigger_bootstrap_test2.yaml";
  std::ofstream(path) << "clusters:\n- name: a\nroutes:\n- name: outbound\n  virtual_hosts:\n"
                         "  - domains: [a]\n    routes:\n    - route: {cluster: nope}\n";
  SidecarFlags f;
  f.config_path = path;
  f.outbound = "127.0.0.1:0";
  auto snap = outrigger::proxy::LoadSnapshot(f, 1);
  REQUIRE_FALSE(snap.ok());
  CHECK(std::string(snap.status().message())
            .find(path + ":8:24: routes[0].virtual_hosts[0].routes[0].route.cluster: unknown "
                         "cluster 'nope'") == 0);
  std::remove(path.c_str());
}

TEST_CASE("flag errors name the flag", "[bootstrap]") {
  auto err = [](SidecarFlags f) { return std::string(BuildBootstrap(f).status().message()); };
  SidecarFlags f;
  CHECK(err(f).find("nothing to serve") != std::string::npos);
  f.inbound = "127.0.0.1:0";
  CHECK(err(f).find("--inbound needs --app") != std::string::npos);
  f.app = "app:80";
  CHECK(err(f).find("--app:") == 0);
  f.app = "127.0.0.1:80";
  f.inbound = "nope";
  CHECK(err(f).find("--inbound:") == 0);
  SidecarFlags g;
  g.config_path = "/nonexistent.yaml";
  CHECK(err(g).find("/nonexistent.yaml: cannot open") == 0);
}
