// What proxies receive for inbound security (controlplane/mesh/inbound_policy.cc and the
// endpoints of view_builder.cc): the AuthorizationPolicies that apply to each workload, its
// effective mTLS mode (MeshTLS for its Service, else its namespace's, else Mesh.spec.mtls, else
// PERMISSIVE), and whether callers are told to speak mTLS to it (an endpoint's spiffe_id).
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/mesh/inbound_policy.h"
#include "controlplane/mesh/view_builder.h"
#include "controlplane/policy/loader.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {
namespace {

const char kServices[] = R"(apiVersion: v1
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
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  selector: {app: checkout}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: web}
spec:
  selector: {app: frontend}
  ports: [{name: http, port: 80}]
---
)";

const char kAuthorization[] = R"(apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: catalog-readers, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
  rules:
    - principals: ["spiffe://cluster.local/ns/web/sa/frontend", "spiffe://cluster.local/ns/shop/*"]
      namespaces: [web, shop]
      paths: ["/api/*", /health]
      methods: [GET, HEAD]
      headers: [{name: X-Tenant, values: [a, b]}]
      notPrincipals: ["*/sa/banned"]
      notPaths: ["/api/admin/*"]
    - methods: [OPTIONS]
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: v2-canary, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog-v2}
  action: DENY
  mode: DryRun
  rules: [{methods: [POST]}]
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: a-no-debug, namespace: shop}
spec:
  action: DENY
  rules: [{paths: ["/debug/*"]}]
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: checkout-callers, namespace: shop}
spec:
  targetRef: {kind: Service, name: checkout}
  rules: [{principals: ["*"]}]
---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: nobody, namespace: web}
spec: {}
)";

policy::PolicySet Load(const std::string& text) {
  policy::PolicyErrors errors;
  policy::PolicySet set = policy::BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(absl::StrJoin(errors.Sorted(), "\n"));
  REQUIRE(errors.empty());
  return set;
}

v1::Node MakeNode(const std::string& id, const std::string& ns, const std::string& service,
                  const std::map<std::string, std::string>& labels,
                  const std::string& inbound = "") {
  v1::Node node;
  node.set_id(id);
  node.set_namespace_(ns);
  node.set_service(service);
  node.set_inbound_address(inbound);
  for (const auto& [k, v] : labels) (*node.mutable_labels())[k] = v;
  return node;
}

std::vector<std::string> NamesOf(const v1::InboundPolicy& p) {
  std::vector<std::string> out;
  for (const auto& a : p.authorization()) out.push_back(a.name());
  return out;
}

// The InboundPolicy and endpoints the view builder gives, with the mesh CA on or off.
struct Views {
  Views(const std::string& text, bool mesh_ca) {
    views.SetPolicy(std::make_shared<const policy::PolicySet>(Load(text)));
    if (mesh_ca) views.SetTrustDomain("cluster.local");
  }

  void AddWorkload(const v1::Node& node) { workloads[node.id()].node = node; }

  v1::InboundPolicy Inbound(const v1::Node& node) {
    const View view = views.Build(node, workloads, 1);
    const auto& resources = *view.Get(kInboundPolicyType).resources;
    REQUIRE(resources.size() == 1);
    v1::InboundPolicy p;
    REQUIRE(resources[0].body.UnpackTo(&p));
    return p;
  }

  // address -> spiffe_id ("" when plaintext) of the endpoints of `cluster`.
  std::map<std::string, std::string> Endpoints(const std::string& cluster) {
    const View view = views.Build(MakeNode("viewer", "shop", "viewer", {}), workloads, 1);
    std::map<std::string, std::string> out;
    for (const Resource& r : *view.Get(kEndpointType).resources) {
      if (r.name != cluster) continue;
      v1::ClusterLoadAssignment cla;
      REQUIRE(r.body.UnpackTo(&cla));
      for (const auto& e : cla.endpoints()) out[e.address()] = e.spiffe_id();
    }
    return out;
  }

  ViewBuilderImpl views;
  std::map<std::string, Workload> workloads;
};

// Mesh-wide STRICT; shop PERMISSIVE; catalog DISABLE; catalog-v2 STRICT.
std::string TlsPolicy(bool with_mesh) {
  return absl::StrCat(kServices,
                      with_mesh ? R"(apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {mtls: STRICT}
---
)"
                                : "",
                      R"(apiVersion: outrigger.dev/v1alpha1
kind: MeshTLS
metadata: {name: shop-wide, namespace: shop}
spec: {mode: PERMISSIVE}
---
apiVersion: outrigger.dev/v1alpha1
kind: MeshTLS
metadata: {name: catalog, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
  mode: DISABLE
---
apiVersion: outrigger.dev/v1alpha1
kind: MeshTLS
metadata: {name: catalog-v2, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog-v2}
  mode: STRICT
)");
}

}  // namespace

TEST_CASE("a proxy gets the AuthorizationPolicies of its namespace that select it",
          "[inbound][authz]") {
  const policy::PolicySet set = Load(absl::StrCat(kServices, kAuthorization));

  // catalog v2: selected by catalog and catalog-v2, plus the namespace-wide one; by name.
  v1::InboundPolicy p =
      BuildInboundPolicy(set, MakeNode("a", "shop", "catalog", {{"version", "v2"}}), false);
  CHECK(NamesOf(p) ==
        std::vector<std::string>{"shop/a-no-debug", "shop/catalog-readers", "shop/v2-canary"});
  // catalog v1: not catalog-v2's.
  p = BuildInboundPolicy(set, MakeNode("b", "shop", "catalog", {{"version", "v1"}}), false);
  CHECK(NamesOf(p) == std::vector<std::string>{"shop/a-no-debug", "shop/catalog-readers"});
  // checkout: its own and the namespace's.
  p = BuildInboundPolicy(set, MakeNode("c", "shop", "pay", {{"app", "checkout"}}), false);
  CHECK(NamesOf(p) == std::vector<std::string>{"shop/a-no-debug", "shop/checkout-callers"});
  // A workload no Service selects still gets the namespace-wide policies.
  p = BuildInboundPolicy(set, MakeNode("d", "shop", "batch", {}), false);
  CHECK(NamesOf(p) == std::vector<std::string>{"shop/a-no-debug"});
  // web: only web's (an ALLOW policy without rules: it allows nothing).
  p = BuildInboundPolicy(set, MakeNode("e", "web", "frontend", {}), false);
  REQUIRE(NamesOf(p) == std::vector<std::string>{"web/nobody"});
  CHECK(p.authorization(0).action() == v1::AuthorizationPolicy::ALLOW);
  CHECK(p.authorization(0).rules_size() == 0);
  // Another namespace's catalog gets none of shop's.
  p = BuildInboundPolicy(set, MakeNode("f", "other", "catalog", {{"version", "v2"}}), false);
  CHECK(p.authorization_size() == 0);
  CHECK(p.tls_mode() == v1::TLS_MODE_UNSPECIFIED);  // no mesh CA
}

TEST_CASE("AuthorizationPolicies are converted rule for rule", "[inbound][authz]") {
  const policy::PolicySet set = Load(absl::StrCat(kServices, kAuthorization));
  const v1::InboundPolicy p =
      BuildInboundPolicy(set, MakeNode("a", "shop", "catalog", {{"version", "v2"}}), false);
  REQUIRE(p.authorization_size() == 3);

  const v1::AuthorizationPolicy& deny = p.authorization(0);
  CHECK(deny.name() == "shop/a-no-debug");
  CHECK(deny.action() == v1::AuthorizationPolicy::DENY);
  CHECK_FALSE(deny.dry_run());
  REQUIRE(deny.rules_size() == 1);
  CHECK(deny.rules(0).paths(0) == "/debug/*");

  const v1::AuthorizationPolicy& readers = p.authorization(1);
  CHECK(readers.action() == v1::AuthorizationPolicy::ALLOW);
  CHECK_FALSE(readers.dry_run());
  REQUIRE(readers.rules_size() == 2);
  const v1::AuthorizationRule& r = readers.rules(0);
  CHECK(std::vector<std::string>(r.principals().begin(), r.principals().end()) ==
        std::vector<std::string>{"spiffe://cluster.local/ns/web/sa/frontend",
                                 "spiffe://cluster.local/ns/shop/*"});
  CHECK(std::vector<std::string>(r.namespaces().begin(), r.namespaces().end()) ==
        std::vector<std::string>{"web", "shop"});
  CHECK(std::vector<std::string>(r.paths().begin(), r.paths().end()) ==
        std::vector<std::string>{"/api/*", "/health"});
  CHECK(std::vector<std::string>(r.methods().begin(), r.methods().end()) ==
        std::vector<std::string>{"GET", "HEAD"});
  REQUIRE(r.headers_size() == 1);
  CHECK(r.headers(0).name() == "x-tenant");
  CHECK(std::vector<std::string>(r.headers(0).values().begin(), r.headers(0).values().end()) ==
        std::vector<std::string>{"a", "b"});
  REQUIRE(r.not_principals_size() == 1);
  CHECK(r.not_principals(0) == "*/sa/banned");
  REQUIRE(r.not_paths_size() == 1);
  CHECK(r.not_paths(0) == "/api/admin/*");
  const v1::AuthorizationRule& options = readers.rules(1);
  CHECK(options.methods_size() == 1);
  CHECK(options.principals_size() == 0);

  const v1::AuthorizationPolicy& canary = p.authorization(2);
  CHECK(canary.action() == v1::AuthorizationPolicy::DENY);
  CHECK(canary.dry_run());
}

TEST_CASE("a changed AuthorizationPolicy changes only the InboundPolicy of those it selects",
          "[inbound][authz]") {
  Views before(absl::StrCat(kServices, kAuthorization), false);
  Views after(absl::StrCat(kServices, kAuthorization, R"(---
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: checkout-extra, namespace: shop}
spec:
  targetRef: {kind: Service, name: checkout}
  action: DENY
  rules: [{methods: [DELETE]}]
)"),
              false);
  const v1::Node catalog = MakeNode("a", "shop", "catalog", {{"version", "v1"}});
  const v1::Node checkout = MakeNode("c", "shop", "checkout", {});
  CHECK(before.views.Build(catalog, before.workloads, 1).Get(kInboundPolicyType).version ==
        after.views.Build(catalog, after.workloads, 1).Get(kInboundPolicyType).version);
  CHECK(before.views.Build(checkout, before.workloads, 1).Get(kInboundPolicyType).version !=
        after.views.Build(checkout, after.workloads, 1).Get(kInboundPolicyType).version);
  CHECK(NamesOf(after.Inbound(checkout)) == std::vector<std::string>{"shop/a-no-debug",
                                                                     "shop/checkout-callers",
                                                                     "shop/checkout-extra"});
}

TEST_CASE("the effective mTLS mode: Service, then namespace, then mesh, then PERMISSIVE",
          "[inbound][mtls]") {
  const v1::Node catalog_v1 = MakeNode("a", "shop", "catalog", {{"version", "v1"}});
  const v1::Node catalog_v2 = MakeNode("b", "shop", "catalog", {{"version", "v2"}});
  const v1::Node checkout = MakeNode("c", "shop", "checkout", {});
  const v1::Node frontend = MakeNode("d", "web", "frontend", {});

  Views with_mesh(TlsPolicy(/*with_mesh=*/true), /*mesh_ca=*/true);
  // Selected by catalog (DISABLE) and catalog-v2 (STRICT): the more specific selector wins.
  CHECK(with_mesh.Inbound(catalog_v2).tls_mode() == v1::STRICT);
  // Only catalog's MeshTLS selects it.
  CHECK(with_mesh.Inbound(catalog_v1).tls_mode() == v1::DISABLE);
  // No MeshTLS for checkout: shop's namespace-wide one.
  CHECK(with_mesh.Inbound(checkout).tls_mode() == v1::PERMISSIVE);
  // No MeshTLS in web: the mesh-wide Mesh.spec.mtls.
  CHECK(with_mesh.Inbound(frontend).tls_mode() == v1::STRICT);

  // Without Mesh.spec.mtls: PERMISSIVE; the MeshTLS still apply.
  Views no_mesh(TlsPolicy(/*with_mesh=*/false), /*mesh_ca=*/true);
  CHECK(no_mesh.Inbound(frontend).tls_mode() == v1::PERMISSIVE);
  CHECK(no_mesh.Inbound(catalog_v1).tls_mode() == v1::DISABLE);
  CHECK(no_mesh.Inbound(catalog_v2).tls_mode() == v1::STRICT);

  // The mesh CA off: a plaintext mesh, the mode is not sent.
  Views no_ca(TlsPolicy(/*with_mesh=*/true), /*mesh_ca=*/false);
  CHECK(no_ca.Inbound(catalog_v2).tls_mode() == v1::TLS_MODE_UNSPECIFIED);
  CHECK(no_ca.Inbound(frontend).tls_mode() == v1::TLS_MODE_UNSPECIFIED);

  // EffectiveTlsMode itself does not depend on the CA.
  const policy::PolicySet set = Load(TlsPolicy(/*with_mesh=*/true));
  CHECK(EffectiveTlsMode(set, catalog_v1) == v1::DISABLE);
  CHECK(EffectiveTlsMode(set, MakeNode("e", "other", "x", {})) == v1::STRICT);
}

TEST_CASE("callers speak plaintext to workloads whose mTLS mode is DISABLE", "[inbound][mtls]") {
  Views v(TlsPolicy(/*with_mesh=*/true), /*mesh_ca=*/true);
  v.AddWorkload(MakeNode("a", "shop", "catalog", {{"version", "v1"}}, "10.0.0.1:15006"));
  v.AddWorkload(MakeNode("b", "shop", "catalog", {{"version", "v2"}}, "10.0.0.2:15006"));
  v.AddWorkload(MakeNode("c", "shop", "checkout", {}, "10.0.0.3:15006"));
  v.AddWorkload(MakeNode("d", "web", "frontend", {}, "10.0.0.4:15006"));
  // catalog v1 is DISABLE: no spiffe_id; v2 (STRICT) keeps its identity.
  CHECK(
      v.Endpoints("catalog.shop") ==
      std::map<std::string, std::string>{
          {"10.0.0.1:15006", ""}, {"10.0.0.2:15006", "spiffe://cluster.local/ns/shop/sa/catalog"}});
  CHECK(v.Endpoints("catalog-v2.shop") ==
        std::map<std::string, std::string>{
            {"10.0.0.2:15006", "spiffe://cluster.local/ns/shop/sa/catalog"}});
  CHECK(v.Endpoints("checkout.shop") ==
        std::map<std::string, std::string>{
            {"10.0.0.3:15006", "spiffe://cluster.local/ns/shop/sa/checkout"}});
  CHECK(v.Endpoints("frontend.web") ==
        std::map<std::string, std::string>{
            {"10.0.0.4:15006", "spiffe://cluster.local/ns/web/sa/frontend"}});

  // The other way round: the mesh DISABLE, one Service STRICT.
  Views inverse(absl::StrCat(kServices, R"(apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {mtls: DISABLE}
---
apiVersion: outrigger.dev/v1alpha1
kind: MeshTLS
metadata: {name: checkout, namespace: shop}
spec:
  targetRef: {kind: Service, name: checkout}
  mode: STRICT
)"),
                /*mesh_ca=*/true);
  inverse.AddWorkload(MakeNode("a", "shop", "catalog", {}, "10.0.0.1:15006"));
  inverse.AddWorkload(MakeNode("c", "shop", "checkout", {}, "10.0.0.3:15006"));
  CHECK(inverse.Endpoints("catalog.shop") ==
        std::map<std::string, std::string>{{"10.0.0.1:15006", ""}});
  CHECK(inverse.Endpoints("checkout.shop") ==
        std::map<std::string, std::string>{
            {"10.0.0.3:15006", "spiffe://cluster.local/ns/shop/sa/checkout"}});

  // Without the mesh CA no endpoint has an identity, whatever the modes.
  Views no_ca(TlsPolicy(/*with_mesh=*/true), /*mesh_ca=*/false);
  no_ca.AddWorkload(MakeNode("b", "shop", "catalog", {{"version", "v2"}}, "10.0.0.2:15006"));
  CHECK(no_ca.Endpoints("catalog.shop") ==
        std::map<std::string, std::string>{{"10.0.0.2:15006", ""}});
}

}  // namespace outrigger::controlplane

namespace outrigger::controlplane {
namespace {

TEST_CASE("the inbound listener's protocol comes from the Service ports", "[inbound][tcp]") {
  const policy::PolicySet set = Load(R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: db}
  ports: [{name: tcp-postgres, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: shop}
spec:
  selector: {app: cache}
  ports: [{name: main, port: 6379, appProtocol: redis}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http-web, port: 80}, {name: api, port: 81, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: mixed, namespace: shop}
spec:
  selector: {app: mixed}
  ports: [{name: http, port: 80}, {name: tcp, port: 81}]
---
apiVersion: v1
kind: Service
metadata: {name: unnamed, namespace: shop}
spec:
  selector: {app: unnamed}
  ports: [{port: 80}]
)");
  auto protocol = [&](const std::string& app) {
    return BuildInboundPolicy(set, MakeNode(app, "shop", app, {{"app", app}}), false)
        .inbound_protocol();
  };
  CHECK(protocol("db") == v1::Listener::TCP);
  CHECK(protocol("cache") == v1::Listener::TCP);
  CHECK(protocol("web") == v1::Listener::HTTP);
  CHECK(protocol("mixed") == v1::Listener::DETECT);
  CHECK(protocol("unnamed") == v1::Listener::DETECT);
  CHECK(protocol("nobody-selects-me") == v1::Listener::PROTOCOL_UNSPECIFIED);
}

}  // namespace
}  // namespace outrigger::controlplane
