// Authorization decisions: DENY before ALLOW, an unmatched request denied once an ALLOW policy
// exists, principals (exact, prefix, suffix, "*") and namespaces from SPIFFE IDs, plaintext
// callers without a principal, paths, methods, headers, negations, dry-run policies.
#include "filters/authz/authorization.h"

#include <catch2/catch.hpp>

#include "outrigger/v1/config.pb.h"
#include "xds/yaml_proto.h"

using outrigger::authz::Authorizer;

namespace {

std::shared_ptr<const Authorizer> Make(const char* yaml) {
  outrigger::v1::InboundPolicy p;
  REQUIRE(outrigger::xds::YamlToProto(yaml, "test.yaml", &p).ok());
  auto a = Authorizer::FromProto(p.authorization());
  REQUIRE(a.ok());
  return *a;
}

outrigger::authz::Decision Decide(const Authorizer& a, absl::string_view principal,
                                  absl::string_view path, absl::string_view method = "GET",
                                  absl::string_view tenant = "") {
  auto header = [&](absl::string_view name) -> std::optional<absl::string_view> {
    if (name == "x-tenant" && !tenant.empty()) return tenant;
    return std::nullopt;
  };
  return a.Decide({principal, path, method, header});
}

constexpr absl::string_view kPage = "spiffe://cluster.local/ns/default/sa/productpage";
constexpr absl::string_view kShop = "spiffe://cluster.local/ns/shop/sa/cart";

}  // namespace

TEST_CASE("no policy allows everything", "[authz]") {
  auto a = Make("name: x");
  CHECK(a->empty());
  CHECK(Decide(*a, "", "/").allowed);
}

TEST_CASE("an ALLOW policy admits its callers and denies the rest", "[authz]") {
  auto a = Make(R"(
authorization:
  - name: default/readers
    rules:
      - principals: ["spiffe://cluster.local/ns/default/sa/productpage"]
        methods: [GET, HEAD]
        paths: ["/api/*", "/health"]
)");
  auto ok = Decide(*a, kPage, "/api/books?id=1");
  CHECK(ok.allowed);
  CHECK(ok.policy == "default/readers");
  CHECK(Decide(*a, kPage, "/health").allowed);
  CHECK_FALSE(Decide(*a, kPage, "/healthz").allowed);
  CHECK_FALSE(Decide(*a, kPage, "/api/x", "POST").allowed);
  CHECK_FALSE(Decide(*a, kShop, "/api/x").allowed);
  CHECK_FALSE(Decide(*a, "", "/api/x").allowed);  // plaintext: no principal
}

TEST_CASE("DENY wins over ALLOW; '*' needs an authenticated caller", "[authz]") {
  auto a = Make(R"(
authorization:
  - name: default/everyone
    rules: [{principals: ["*"]}]
  - name: default/no-shop
    action: DENY
    rules: [{namespaces: [shop]}]
)");
  CHECK(Decide(*a, kPage, "/").allowed);
  auto denied = Decide(*a, kShop, "/");
  CHECK_FALSE(denied.allowed);
  CHECK(denied.policy == "default/no-shop");
  CHECK_FALSE(Decide(*a, "", "/").allowed);
}

TEST_CASE("prefix and suffix principals, headers and negations", "[authz]") {
  auto a = Make(R"(
authorization:
  - name: p
    rules:
      - principals: ["spiffe://cluster.local/ns/default/*"]
        not_principals: ["*/sa/intruder"]
        headers: [{name: X-Tenant, values: [a, b]}]
        not_paths: ["/admin*"]
)");
  CHECK(Decide(*a, kPage, "/", "GET", "a").allowed);
  CHECK_FALSE(Decide(*a, kPage, "/", "GET", "c").allowed);
  CHECK_FALSE(Decide(*a, kPage, "/", "GET").allowed);
  CHECK_FALSE(Decide(*a, kPage, "/admin/users", "GET", "a").allowed);
  CHECK_FALSE(Decide(*a, "spiffe://cluster.local/ns/default/sa/intruder", "/", "GET", "a").allowed);
  CHECK_FALSE(Decide(*a, kShop, "/", "GET", "a").allowed);
}

TEST_CASE("dry-run policies report but never decide", "[authz]") {
  auto a = Make(R"(
authorization:
  - name: audit/deny-shop
    action: DENY
    dry_run: true
    rules: [{namespaces: [shop]}]
)");
  auto d = Decide(*a, kShop, "/");
  CHECK(d.allowed);
  CHECK(d.dry_run_denied_by == "audit/deny-shop");
  CHECK(Decide(*a, kPage, "/").dry_run_denied_by.empty());
}

TEST_CASE("bad patterns name the field", "[authz]") {
  outrigger::v1::InboundPolicy p;
  REQUIRE(outrigger::xds::YamlToProto(R"(
authorization: [{name: x, rules: [{paths: ["/a*b"]}]}]
)", "t.yaml", &p).ok());
  auto a = Authorizer::FromProto(p.authorization());
  REQUIRE_FALSE(a.ok());
  CHECK(std::string(a.status().message()).find("authorization[0].rules[0].paths[0]") !=
        std::string::npos);
}
