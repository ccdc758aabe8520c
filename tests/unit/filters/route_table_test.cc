// The route table: authority matching (exact, host without port, wildcard, default), path
// matching, weighted cluster picks and validation errors.
#include "filters/router/route_table.h"

#include <catch2/catch.hpp>
#include <map>

#include "outrigger/v1/config.pb.h"

using outrigger::router::RouteTable;

namespace {

outrigger::v1::RouteConfiguration Config() {
  outrigger::v1::RouteConfiguration rc;
  rc.set_name("outbound");
  auto* reviews = rc.add_virtual_hosts();
  reviews->set_name("reviews");
  reviews->add_domains("reviews");
  auto* api = reviews->add_routes();
  api->mutable_match()->set_prefix("/api/");
  api->mutable_route()->set_cluster("reviews-api");
  api->mutable_route()->set_prefix_rewrite("/");
  auto* all = reviews->add_routes();
  all->mutable_match()->set_prefix("/");
  auto* wc = all->mutable_route()->mutable_weighted_clusters();
  auto* v1 = wc->add_clusters();
  v1->set_name("reviews-v1");
  v1->set_weight(90);
  auto* v2 = wc->add_clusters();
  v2->set_name("reviews-v2");
  v2->set_weight(10);
  auto* exact_port = rc.add_virtual_hosts();
  exact_port->add_domains("ratings:9080");
  auto* r = exact_port->add_routes();
  r->mutable_match()->set_path("/exact");
  r->mutable_route()->set_cluster("ratings");
  auto* wild = rc.add_virtual_hosts();
  wild->add_domains("*.example.com");
  wild->add_routes()->mutable_route()->set_cluster("example");
  return rc;
}

bool AnyCluster(absl::string_view) { return true; }

}  // namespace

TEST_CASE("authority matching follows Envoy's order", "[router]") {
  auto table = RouteTable::FromProto(Config(), AnyCluster);
  REQUIRE(table.ok());
  const RouteTable& t = **table;
  CHECK(t.FindVirtualHost("reviews")->name == "reviews");
  CHECK(t.FindVirtualHost("Reviews:9080")->name == "reviews");  // any port, any case
  CHECK(t.FindVirtualHost("ratings:9080") != nullptr);
  CHECK(t.FindVirtualHost("ratings:9081") == nullptr);          // port given in the domain
  CHECK(t.FindVirtualHost("ratings") == nullptr);
  CHECK(t.FindVirtualHost("a.example.com") != nullptr);
  CHECK(t.FindVirtualHost("example.com") == nullptr);           // wildcard needs a label
  CHECK(t.FindVirtualHost("unknown") == nullptr);
}

TEST_CASE("path matching: first route wins, exact paths, prefix rewrite", "[router]") {
  auto table = RouteTable::FromProto(Config(), AnyCluster);
  REQUIRE(table.ok());
  const auto* api = (*table)->Match("reviews", "/api/items");
  REQUIRE(api != nullptr);
  CHECK(api->clusters[0].name == "reviews-api");
  CHECK(api->RewritePath("/api/items?x=1") == "/items?x=1");
  CHECK((*table)->Match("ratings:9080", "/exact") != nullptr);
  CHECK((*table)->Match("ratings:9080", "/exact/more") == nullptr);
}

TEST_CASE("weighted clusters split in proportion to weights", "[router]") {
  auto table = RouteTable::FromProto(Config(), AnyCluster);
  REQUIRE(table.ok());
  const auto* route = (*table)->Match("reviews", "/");
  std::map<std::string, int> counts;
  for (uint64_t i = 0; i < 1000; ++i) ++counts[route->PickCluster(i)];
  CHECK(counts["reviews-v1"] == 900);  // every residue once: exact proportions
  CHECK(counts["reviews-v2"] == 100);
}

TEST_CASE("a default virtual host catches the rest", "[router]") {
  auto rc = Config();
  auto* def = rc.add_virtual_hosts();
  def->add_domains("*");
  def->add_routes()->mutable_route()->set_cluster("fallback");
  auto table = RouteTable::FromProto(rc, AnyCluster);
  REQUIRE(table.ok());
  CHECK((*table)->Match("anything", "/")->clusters[0].name == "fallback");
}

TEST_CASE("validation errors name the field", "[router]") {
  auto err = [](const outrigger::v1::RouteConfiguration& rc) {
    auto t = RouteTable::FromProto(rc, [](absl::string_view n) { return n != "missing"; });
    REQUIRE_FALSE(t.ok());
    return std::string(t.status().message());
  };
  auto rc = Config();
  rc.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_route()->set_cluster("missing");
  CHECK(err(rc).find("virtual_hosts[0].routes[0].route.cluster: unknown cluster 'missing'") !=
        std::string::npos);
  rc = Config();
  rc.mutable_virtual_hosts(1)->add_domains("reviews");
  CHECK(err(rc).find("more than one virtual host") != std::string::npos);
  rc = Config();
  rc.mutable_virtual_hosts(0)->add_domains("re*views");
  CHECK(err(rc).find("wildcard") != std::string::npos);
  rc = Config();
  for (auto& c : *rc.mutable_virtual_hosts(0)->mutable_routes(1)->mutable_route()
                      ->mutable_weighted_clusters()->mutable_clusters()) {
    c.set_weight(0);
  }
  CHECK(err(rc).find("add up to 0") != std::string::npos);
}

TEST_CASE("ForClusters routes each cluster's name", "[router]") {
  auto t = RouteTable::ForClusters("outbound", {"reviews", "ratings"});
  CHECK(t->Match("ratings:9080", "/x")->clusters[0].name == "ratings");
  CHECK(t->Match("details", "/") == nullptr);
}

TEST_CASE("method, header and query conditions all must hold", "[router]") {
  outrigger::v1::RouteConfiguration rc;
  rc.set_name("r");
  auto* vh = rc.add_virtual_hosts();
  vh->add_domains("*");
  auto* r = vh->add_routes();
  r->mutable_match()->set_safe_regex("/items/[0-9]+");
  r->mutable_match()->set_method("GET");
  auto* h = r->mutable_match()->add_headers();
  h->set_name("X-Canary");
  h->set_exact("yes");
  auto* q = r->mutable_match()->add_query_parameters();
  q->set_name("debug");
  q->set_safe_regex("1|true");
  r->mutable_route()->set_cluster("canary");
  r->mutable_route()->set_path_rewrite("/v2/items");
  auto* fallback = vh->add_routes();
  fallback->mutable_route()->set_cluster("stable");
  auto table = RouteTable::FromProto(rc, AnyCluster);
  REQUIRE(table.ok());
  std::map<std::string, std::string> headers = {{"x-canary", "yes"}};
  auto header = [&](absl::string_view n) -> std::optional<absl::string_view> {
    auto it = headers.find(std::string(n));
    if (it == headers.end()) return std::nullopt;
    return absl::string_view(it->second);
  };
  using outrigger::router::RequestView;
  auto pick = [&](absl::string_view path, absl::string_view method) {
    return (*table)->Match(RequestView{"x", path, method, header})->clusters[0].name;
  };
  CHECK(pick("/items/42?debug=true", "GET") == "canary");
  CHECK(pick("/items/42?a=b&debug=1", "GET") == "canary");
  CHECK(pick("/items/42?debug=0", "GET") == "stable");
  CHECK(pick("/items/42", "GET") == "stable");
  CHECK(pick("/items/42?debug=1", "POST") == "stable");
  CHECK(pick("/items/abc?debug=1", "GET") == "stable");
  headers.clear();
  CHECK(pick("/items/42?debug=1", "GET") == "stable");
  const auto* canary = &(*table)->virtual_hosts()[0].routes[0];
  CHECK(canary->RewritePath("/items/42?debug=1") == "/v2/items?debug=1");
}

TEST_CASE("redirects build their Location from the request", "[router]") {
  outrigger::v1::RouteConfiguration rc;
  rc.set_name("r");
  auto* vh = rc.add_virtual_hosts();
  vh->add_domains("*");
  auto* r = vh->add_routes();
  r->mutable_match()->set_prefix("/old/");
  r->mutable_redirect()->set_prefix_rewrite("/new/");
  r->mutable_redirect()->set_response_code(302);
  auto* s = vh->add_routes();
  s->mutable_redirect()->set_scheme("https");
  s->mutable_redirect()->set_host("secure.example");
  auto table = RouteTable::FromProto(rc, AnyCluster);
  REQUIRE(table.ok());
  auto none = [](absl::string_view) -> std::optional<absl::string_view> { return std::nullopt; };
  using outrigger::router::RequestView;
  RequestView a{"app:8080", "/old/x?y=1", "GET", none};
  const auto* ra = (*table)->Match(a);
  CHECK(ra->redirect->status == 302);
  CHECK(ra->RedirectLocation(a) == "http://app:8080/new/x?y=1");
  RequestView b{"app:8080", "/z", "GET", none};
  CHECK((*table)->Match(b)->RedirectLocation(b) == "https://secure.example/z");
  rc.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_redirect()->set_response_code(200);
  CHECK_FALSE(RouteTable::FromProto(rc, AnyCluster).ok());
}

TEST_CASE("path-separated prefixes match whole segments; prefix rewrites never double '/'",
          "[router]") {
  outrigger::v1::RouteConfiguration rc;
  rc.set_name("r");
  auto* vh = rc.add_virtual_hosts();
  vh->add_domains("*");
  auto* r = vh->add_routes();
  r->mutable_match()->set_path_separated_prefix("/foo/");
  r->mutable_route()->set_cluster("foo");
  r->mutable_route()->set_prefix_rewrite("/");
  auto table = RouteTable::FromProto(rc, AnyCluster);
  REQUIRE(table.ok());
  CHECK((*table)->Match("x", "/foo") != nullptr);
  CHECK((*table)->Match("x", "/foo/bar") != nullptr);
  CHECK((*table)->Match("x", "/foobar") == nullptr);
  const auto* route = (*table)->Match("x", "/foo/x");
  CHECK(route->RewritePath("/foo/x?q=1") == "/x?q=1");
  CHECK(route->RewritePath("/foo") == "/");
  CHECK(route->RewritePath("/foo?q") == "/?q");
}
