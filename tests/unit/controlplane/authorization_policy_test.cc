// The outrigger.dev/v1alpha1 kinds of inbound security (controlplane/policy/kinds/
// authorization_policy.cc, mesh_tls.cc): valid documents load into the right structs, and every
// check reports FILE:LINE and the field path.
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

// "p.yaml:LINE:" of the first `marker` after `after`.
std::string LineAfter(const std::string& text, const std::string& marker,
                      const std::string& after) {
  const std::string where = Where(text, marker, after);
  return where.substr(0, where.rfind(':') + 1);
}

// "p.yaml:LINE:" of the first line holding `marker` in the last document of `text`.
std::string LineOf(const std::string& text, const std::string& marker) {
  return LineAfter(text, marker, text.substr(text.rfind("apiVersion:"), 40));
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

// An AuthorizationPolicy for catalog in shop, with `spec_rest` after its targetRef.
std::string Authz(const std::string& spec_rest) {
  return absl::StrCat(
      "apiVersion: outrigger.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: az, "
      "namespace: shop}\nspec:\n  targetRef: {kind: Service, name: catalog}\n",
      spec_rest);
}

// An AuthorizationPolicy whose one rule is `rule` (indented as a rule's fields).
std::string Rule(const std::string& rule) { return Authz(absl::StrCat("  rules:\n    - ", rule)); }

std::string Tls(const std::string& name, const std::string& spec) {
  return absl::StrCat("apiVersion: outrigger.dev/v1alpha1\nkind: MeshTLS\nmetadata: {name: ", name,
                      ", namespace: shop}\nspec:\n", spec);
}

}  // namespace

TEST_CASE("an AuthorizationPolicy loads every field", "[policy][authz]") {
  const std::string text = absl::StrCat(kShop, R"(apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: catalog-readers, namespace: shop}
spec:
  targetRef: {group: "", kind: Service, name: catalog}
  action: ALLOW
  mode: Enforce
  rules:
    - principals: ["spiffe://cluster.local/ns/shop/sa/frontend", "spiffe://cluster.local/ns/web/*",
                   "*/sa/admin", "*"]
      namespaces: [shop, web]
      paths: ["/api/*", /health]
      methods: [GET, HEAD]
      headers: [{name: X-Tenant, values: [a, b]}]
      notPrincipals: ["spiffe://cluster.local/ns/shop/sa/banned"]
      notPaths: ["/api/admin/*"]
    - {}
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-debug, namespace: shop}
spec:
  action: DENY
  mode: DryRun
  rules: [{paths: ["/debug/*"]}]
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: nobody}
spec: {}
)");
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());
  REQUIRE(set.authorization_policies.size() == 3);

  const AuthorizationPolicy& readers = set.authorization_policies.at({"shop", "catalog-readers"});
  CHECK(readers.target() == ObjectKey{"shop", "catalog"});
  CHECK(readers.action == AuthorizationAction::kAllow);
  CHECK_FALSE(readers.dry_run);
  REQUIRE(readers.rules.size() == 2);
  const AuthorizationRule& r = readers.rules[0];
  CHECK(r.principals == std::vector<std::string>{"spiffe://cluster.local/ns/shop/sa/frontend",
                                                 "spiffe://cluster.local/ns/web/*", "*/sa/admin",
                                                 "*"});
  CHECK(r.namespaces == std::vector<std::string>{"shop", "web"});
  CHECK(r.paths == std::vector<std::string>{"/api/*", "/health"});
  CHECK(r.methods == std::vector<std::string>{"GET", "HEAD"});
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0].name == "x-tenant");  // lower-cased
  CHECK(r.headers[0].values == std::vector<std::string>{"a", "b"});
  CHECK(r.not_principals == std::vector<std::string>{"spiffe://cluster.local/ns/shop/sa/banned"});
  CHECK(r.not_paths == std::vector<std::string>{"/api/admin/*"});
  // {}: a rule without conditions (it matches every request).
  const AuthorizationRule& any = readers.rules[1];
  CHECK(any.principals.empty());
  CHECK(any.paths.empty());
  CHECK(any.headers.empty());

  const AuthorizationPolicy& debug = set.authorization_policies.at({"shop", "no-debug"});
  CHECK(debug.target_name.empty());  // namespace-wide
  CHECK(debug.action == AuthorizationAction::kDeny);
  CHECK(debug.dry_run);
  REQUIRE(debug.rules.size() == 1);
  CHECK(debug.rules[0].paths == std::vector<std::string>{"/debug/*"});

  // An ALLOW policy without rules is valid: it allows nothing.
  const AuthorizationPolicy& nobody = set.authorization_policies.at({"default", "nobody"});
  CHECK(nobody.action == AuthorizationAction::kAllow);
  CHECK_FALSE(nobody.dry_run);
  CHECK(nobody.rules.empty());

  CHECK(set.CountByKind() ==
        std::vector<std::pair<std::string, int>>{{"Service", 2}, {"AuthorizationPolicy", 3}});
}

TEST_CASE("AuthorizationPolicy errors name the file, line and field", "[policy][authz][errors]") {
  CheckCases({
      {"unknown field in a rule", Rule("principal: [\"*\"]\n"),
       "principal:", "spec.rules[0].principal", "unknown field"},
      {"action", Authz("  action: allow\n"), "allow", "spec.action", "is not ALLOW"},
      {"mode", Authz("  mode: Dryrun\n"), "Dryrun", "spec.mode", "is not Enforce"},
      {"targetRef kind",
       "apiVersion: outrigger.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: az, "
       "namespace: shop}\nspec:\n  targetRef:\n    kind: Deployment\n    name: catalog\n",
       "Deployment", "spec.targetRef.kind", "an AuthorizationPolicy targets a Service"},
      {"targetRef without name",
       "apiVersion: outrigger.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: az, "
       "namespace: shop}\nspec:\n  targetRef:\n    kind: Service\n",
       "kind: Service", "spec.targetRef.name", "required"},
      {"target not defined",
       "apiVersion: outrigger.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: az, "
       "namespace: shop}\nspec:\n  targetRef:\n    kind: Service\n    name: nope\n",
       "nope", "spec.targetRef.name", "Service shop/nope is not defined"},
      {"target in another namespace",
       "apiVersion: outrigger.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: az}\n"
       "spec:\n  targetRef:\n    kind: Service\n    name: catalog\n",
       "name: catalog", "spec.targetRef.name", "Service default/catalog is not defined"},
      {"principal without spiffe://", Rule("principals: [\"cluster.local/ns/shop/sa/a\"]\n"),
       "cluster.local/ns", "spec.rules[0].principals[0]", "is not a SPIFFE ID"},
      {"principal with '*' inside",
       Rule("principals:\n        - \"*\"\n        - \"spiffe://cluster.local/ns/*/sa/a\"\n"),
       "ns/*/sa", "spec.rules[0].principals[1]", "'*' only once, at the start or the end"},
      {"principal with two '*'", Rule("principals: [\"*/ns/shop/*\"]\n"), "*/ns/shop/*",
       "spec.rules[0].principals[0]", "'*' only once"},
      {"principal's trust domain", Rule("principals: [\"spiffe://Cluster.Local/ns/a/sa/b\"]\n"),
       "Cluster.Local", "spec.rules[0].principals[0]", "trust domain"},
      {"principal without a path", Rule("principals: [\"spiffe://cluster.local\"]\n"),
       "spiffe://cluster.local\"", "spec.rules[0].principals[0]", "is not a SPIFFE ID"},
      {"principal with a space", Rule("principals: [\"spiffe://cluster.local/ns/a b/*\"]\n"), "a b",
       "spec.rules[0].principals[0]", "spaces"},
      {"empty principal", Rule("principals: [\"\"]\n"), "principals", "spec.rules[0].principals[0]",
       "must not be empty"},
      {"namespace", Rule("namespaces: [Shop]\n"), "Shop", "spec.rules[0].namespaces[0]",
       "RFC 1123 label"},
      {"path without '/'", Rule("paths: [\"api/*\"]\n"), "api/*", "spec.rules[0].paths[0]",
       "must start with '/'"},
      {"path with '*' inside", Rule("paths: [\"/api/*/items\"]\n"), "/items",
       "spec.rules[0].paths[0]", "'*' only at the end"},
      {"path with a query", Rule("paths: [\"/search?q=1\"]\n"), "search", "spec.rules[0].paths[0]",
       "without the query"},
      {"lower-case method", Rule("methods: [GET, get]\n"), "get]", "spec.rules[0].methods[1]",
       "must be upper-case (GET)"},
      {"method not a token", Rule("methods: [\"GE T\"]\n"), "GE T", "spec.rules[0].methods[0]",
       "not an HTTP method"},
      {"header name", Rule("headers: [{name: \"x tenant\", values: [a]}]\n"), "x tenant",
       "spec.rules[0].headers[0].name", "not a valid HTTP header name"},
      {"header without values", Rule("headers:\n        - name: x-tenant\n"), "x-tenant",
       "spec.rules[0].headers[0].values", "at least one value"},
      {"header with no name", Rule("headers:\n        - values: [a]\n"), "values",
       "spec.rules[0].headers[0].name", "must not be empty"},
      {"header value with spaces around", Rule("headers: [{name: x, values: [\" a\"]}]\n"),
       "\" a\"", "spec.rules[0].headers[0].values[0]", "whitespace"},
      {"empty header value", Rule("headers: [{name: x, values: [\"\"]}]\n"), "values",
       "spec.rules[0].headers[0].values[0]", "must not be empty"},
      {"notPrincipals", Rule("notPrincipals: [\"shop\"]\n"), "shop\"",
       "spec.rules[0].notPrincipals[0]", "is not a SPIFFE ID"},
      {"notPaths", Rule("notPaths: [\"admin\"]\n"), "admin", "spec.rules[0].notPaths[0]",
       "must start with '/'"},
      {"second rule",
       Authz("  rules:\n    - methods: [GET]\n    - methods: [POST]\n      paths: [\"x\"]\n"),
       "paths: [\"x\"]", "spec.rules[1].paths[0]", "must start with '/'"},
  });
}

TEST_CASE("every AuthorizationPolicy error of a document is reported", "[policy][authz][errors]") {
  const std::string text = absl::StrCat(
      kShop, Rule("principals: [\"bad\"]\n      paths: [\"bad\"]\n      methods: [bad]\n"));
  const std::vector<std::string> errors = PolicyErrorsOf(text);
  INFO(Show(errors));
  CHECK(errors.size() == 3);
  CHECK(HasError(errors, LineAfter(text, "bad", "principals"), "spec.rules[0].principals[0]: "));
  CHECK(HasError(errors, LineAfter(text, "bad", "paths"), "spec.rules[0].paths[0]: "));
  CHECK(HasError(errors, LineAfter(text, "bad", "methods"), "spec.rules[0].methods[0]: "));
}

TEST_CASE("MeshTLS loads", "[policy][mtls]") {
  PolicyErrors errors;
  PolicySet set = BuildPolicy(
      {{"p.yaml", absl::StrCat(kShop, Tls("shop", "  mode: STRICT\n"), "---\n",
                               Tls("catalog",
                                   "  targetRef: {kind: Service, name: catalog}\n"
                                   "  mode: PERMISSIVE\n"),
                               "---\n",
                               Tls("catalog-v2",
                                   "  targetRef: {group: core, kind: Service, name: "
                                   "catalog-v2}\n  mode: DISABLE\n"),
                               "---\napiVersion: outrigger.dev/v1alpha1\nkind: MeshTLS\n"
                               "metadata: {name: all}\nspec: {mode: STRICT}\n")}},
      &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());
  REQUIRE(set.mesh_tls.size() == 4);
  const MeshTls& shop = set.mesh_tls.at({"shop", "shop"});
  CHECK(shop.target_name.empty());
  CHECK(shop.mode == "STRICT");
  CHECK(set.mesh_tls.at({"shop", "catalog"}).target() == ObjectKey{"shop", "catalog"});
  CHECK(set.mesh_tls.at({"shop", "catalog"}).mode == "PERMISSIVE");
  CHECK(set.mesh_tls.at({"shop", "catalog-v2"}).mode == "DISABLE");
  // Namespace-wide in another namespace: no conflict with shop's.
  CHECK(set.mesh_tls.at({"default", "all"}).target_name.empty());
  CHECK(set.CountByKind() ==
        std::vector<std::pair<std::string, int>>{{"Service", 2}, {"MeshTLS", 4}});
}

TEST_CASE("MeshTLS errors name the file, line and field", "[policy][mtls][errors]") {
  CheckCases({
      {"no mode", Tls("t", "  targetRef: {kind: Service, name: catalog}\n"), "targetRef",
       "spec.mode", "required: STRICT, PERMISSIVE or DISABLE"},
      {"lower-case mode", Tls("t", "  mode: strict\n"), "strict", "spec.mode",
       "'strict' is not STRICT, PERMISSIVE or DISABLE"},
      {"targetRef kind",
       Tls("t", "  targetRef:\n    kind: Pod\n    name: catalog\n  mode: STRICT\n"), "Pod",
       "spec.targetRef.kind", "a MeshTLS targets a Service"},
      {"targetRef group",
       Tls("t",
           "  targetRef:\n    group: apps\n    kind: Service\n    name: catalog\n"
           "  mode: STRICT\n"),
       "apps", "spec.targetRef.group", "core group"},
      {"target not defined",
       Tls("t",
           "  targetRef:\n    kind: Service\n    name: nope\n  mode: "
           "STRICT\n"),
       "nope", "spec.targetRef.name", "Service shop/nope is not defined"},
      {"unknown field", Tls("t", "  mode: STRICT\n  port: 80\n"), "port", "spec.port",
       "unknown field"},
  });
}

TEST_CASE("two MeshTLS for one namespace or one Service: the error names both",
          "[policy][mtls][errors]") {
  {
    const std::string text = absl::StrCat(kShop, Tls("first", "  mode: STRICT\n"), "---\n",
                                          Tls("second", "  mode: PERMISSIVE\n"));
    const std::vector<std::string> errors = PolicyErrorsOf(text);
    INFO(Show(errors));
    REQUIRE(errors.size() == 1);
    // At the second's spec, naming the first's.
    CHECK(HasError(errors, Where(text, "mode", "name: second"),
                   "spec: namespace shop already has a namespace-wide MeshTLS, shop/first (at " +
                       Where(text, "mode", "name: first") + ")"));
  }
  {
    const std::string spec = "  targetRef: {kind: Service, name: catalog}\n  mode: STRICT\n";
    const std::string text = absl::StrCat(kShop, Tls("first", spec), "---\n", Tls("second", spec));
    const std::vector<std::string> errors = PolicyErrorsOf(text);
    INFO(Show(errors));
    REQUIRE(errors.size() == 1);
    CHECK(HasError(errors, Where(text, "catalog}", "name: second"),
                   "spec.targetRef.name: Service shop/catalog already has MeshTLS shop/first (at " +
                       Where(text, "catalog}", "name: first") + ")"));
  }
  // One namespace-wide plus one per Service (catalog, catalog-v2) is fine.
  CHECK(PolicyErrorsOf(absl::StrCat(kShop, Tls("ns", "  mode: STRICT\n"), "---\n",
                                    Tls("a",
                                        "  targetRef: {kind: Service, name: catalog}\n  mode: "
                                        "DISABLE\n"),
                                    "---\n",
                                    Tls("b",
                                        "  targetRef: {kind: Service, name: catalog-v2}\n  mode: "
                                        "PERMISSIVE\n")))
            .empty());
}

}  // namespace outrigger::policy
