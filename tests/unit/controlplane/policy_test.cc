// Policy loading (controlplane/policy/loader.h): multi-document files and directories load into
// the right structs; every kind of error names FILE:LINE:COL and the field; all errors of a
// policy are reported together.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/loader.h"
#include "tests/unit/controlplane/temp_dir.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

// Loads `text` as the file "p.yaml" and returns its errors.
std::vector<std::string> ErrorsOf(const std::string& text) {
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", text}}, &errors);
  return errors.Sorted();
}

bool HasError(const std::vector<std::string>& errors, const std::string& prefix,
              const std::string& fragment = "") {
  return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
    return absl::StartsWith(e, prefix) && absl::StrContains(e, fragment);
  });
}

// Shows every error when a check fails.
std::string Show(const std::vector<std::string>& errors) { return absl::StrJoin(errors, "\n"); }

const char kServices[] = R"(apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector: {app: reviews}
  ports:
    - {name: http, port: 9080, targetPort: http, appProtocol: http}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v1}
spec:
  selector: {app: reviews, version: v1}
  ports: [{port: 9080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2}
spec:
  selector: {app: reviews, version: v2}
  ports: [{port: 9080}]
)";

}  // namespace

TEST_CASE("a multi-document policy loads into the right structs", "[policy]") {
  const std::string text = absl::StrCat(kServices, R"(---
# static endpoints for a service without sidecars
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  type: ClusterIP
  clusterIP: 10.0.0.7
  sessionAffinity: None
  ports: [{port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: data
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
endpoints:
  - addresses: [10.1.0.1]
  - addresses: [10.1.0.2]
    conditions: {ready: false}
ports: [{port: 5432}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
    - matches:
        - path: {type: Exact, value: /health}
          headers: [{name: X-Canary, value: "1"}]
          method: GET
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-route, value: canary}]
            remove: [x-debug]
      backendRefs:
        - {name: reviews-v2, port: 9080}
      timeouts: {request: 1h30m, backendRequest: 500ms}
    - backendRefs:
        - name: reviews-v1
          port: 9080
          weight: 90
        - name: reviews-v2
          port: 9080
          weight: 10
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {add: [{name: x-canary, value: "1"}]}
---
apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {defaultTimeout: 15s}
)");
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());

  REQUIRE(set.services.size() == 4);
  const Service& reviews = *set.FindService({"default", "reviews"});
  CHECK(reviews.meta.source.line == 1);
  CHECK(reviews.selector == Labels{{"app", "reviews"}});
  REQUIRE(reviews.ports.size() == 1);
  CHECK(reviews.ports[0].target_port == 0);
  CHECK(reviews.ports[0].target_port_name == "http");
  CHECK(reviews.ports[0].app_protocol == "http");
  CHECK(reviews.Selects({{"app", "reviews"}, {"version", "v9"}}));
  const Service& v1 = *set.FindService({"default", "reviews-v1"});
  CHECK(v1.meta.source.line == 10);  // the second document's first line, after "---"
  CHECK(v1.ports[0].target_port == 8080);
  CHECK(set.FindService({"default", "reviews-v2"})->ports[0].target_port == 9080);  // = port
  CHECK_FALSE(v1.Selects({{"app", "reviews"}, {"version", "v2"}}));

  const Service& db = *set.FindService({"data", "db"});
  CHECK(db.selector.empty());
  REQUIRE(set.EndpointSlicesOf(db.meta.key()).size() == 1);
  const EndpointSlice& slice = *set.EndpointSlicesOf(db.meta.key())[0];
  CHECK(slice.service_name == "db");
  CHECK(slice.address_type == AddressType::kIPv4);
  REQUIRE(slice.endpoints.size() == 2);
  CHECK(slice.endpoints[0].address == "10.1.0.1");
  CHECK(slice.endpoints[0].ready);
  CHECK_FALSE(slice.endpoints[1].ready);
  CHECK(slice.ports[0].port == 5432);

  const HttpRoute& route = *set.FindHttpRoute({"default", "reviews"});
  REQUIRE(route.parent_refs.size() == 1);
  CHECK(route.parent_refs[0].key() == ObjectKey{"default", "reviews"});
  CHECK(route.parent_refs[0].port == 9080);
  REQUIRE(route.rules.size() == 2);
  const RouteRule& r0 = route.rules[0];
  CHECK(r0.matches[0].path.type == PathMatchType::kExact);
  CHECK(r0.matches[0].path.value == "/health");
  CHECK(r0.matches[0].headers[0].name == "x-canary");
  CHECK(r0.matches[0].method == "GET");
  REQUIRE(r0.filters.size() == 1);
  CHECK(r0.filters[0].type == RouteFilter::Type::kRequestHeaderModifier);
  CHECK(r0.filters[0].request_header_modifier->set[0].value == "canary");
  CHECK(r0.filters[0].request_header_modifier->remove[0] == "x-debug");
  CHECK(r0.backend_refs[0].weight == 1);  // the default
  CHECK(*r0.timeouts.request == absl::Minutes(90));
  CHECK(*r0.timeouts.backend_request == absl::Milliseconds(500));
  const RouteRule& r1 = route.rules[1];
  REQUIRE(r1.matches.size() == 1);  // defaulted: every request
  CHECK(r1.matches[0].path.type == PathMatchType::kPathPrefix);
  CHECK(r1.matches[0].path.value == "/");
  CHECK(r1.backend_refs[0].weight == 90);
  CHECK(r1.backend_refs[1].weight == 10);
  CHECK(r1.filters[0].request_header_modifier->add[0].name == "x-canary");
  CHECK_FALSE(r1.timeouts.request.has_value());
  // Fields stay locatable for errors found later.
  CHECK(route.meta.fields->Locate("spec.rules[1].backendRefs[0].weight") ==
        std::optional<std::string>("p.yaml:69:19"));

  CHECK(set.mesh.meta.name == "mesh");
  CHECK(set.mesh.trust_domain == "cluster.local");
  CHECK(*set.mesh.default_timeout == absl::Seconds(15));
  CHECK(set.mesh.endpoint_grace_period == absl::Seconds(10));

  CHECK(set.CountByKind() ==
        std::vector<std::pair<std::string, int>>{
            {"Service", 4}, {"EndpointSlice", 1}, {"HTTPRoute", 1}, {"Mesh", 1}});
  CHECK(set.version.size() == 16);
}

TEST_CASE("the version changes with the content only", "[policy]") {
  PolicyErrors errors;
  const std::string a = BuildPolicy({{"p.yaml", kServices}}, &errors).version;
  CHECK(BuildPolicy({{"p.yaml", kServices}}, &errors).version == a);
  CHECK(BuildPolicy({{"p.yaml", absl::StrCat(kServices, "---\n# c\n")}}, &errors).version == a);
  std::string changed = kServices;
  changed.replace(changed.find("9080"), 4, "9081");
  CHECK(BuildPolicy({{"p.yaml", changed}}, &errors).version != a);
  CHECK(errors.empty());
}

TEST_CASE("defaults: no Mesh document, namespace default", "[policy]") {
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", kServices}}, &errors);
  REQUIRE(errors.empty());
  CHECK(set.mesh.meta.name.empty());
  CHECK(set.mesh.trust_domain == "cluster.local");
  CHECK(set.mesh.endpoint_grace_period == absl::Seconds(10));
  CHECK(set.services.begin()->first.ns == "default");
}

TEST_CASE("document errors name the file's own line", "[policy][errors]") {
  // The fourth document starts at line 24: a typo there is reported at line 28.
  auto errors = ErrorsOf(absl::StrCat(kServices, R"(---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selectr: {app: ratings}
  ports: [{port: 9080}]
)"));
  INFO(Show(errors));
  CHECK(HasError(errors, "p.yaml:28:3: spec.selectr: unknown field 'selectr'", "selector"));
  // YAML syntax errors too.
  errors = ErrorsOf(absl::StrCat(kServices, "---\napiVersion: v1\nkind: [Service\n"));
  CHECK(HasError(errors, "p.yaml:26:", "invalid YAML"));
}

TEST_CASE("each kind of error is placed at its field", "[policy][errors]") {
  struct Case {
    const char* what;
    std::string yaml;
    std::string prefix;    // "p.yaml:LINE:COL: field"
    std::string fragment;  // part of the problem
  };
  const std::string route_head =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
      "  parentRefs: [{kind: Service, name: reviews}]\n  rules:\n";  // rules start at line 7
  const std::string s = absl::StrCat(kServices, "---\n");            // next document: line 25
  const std::vector<Case> cases = {
      {"unsupported kind", s + "apiVersion: apps/v1\nkind: Deployment\n",
       "p.yaml:25:7: kind: unsupported kind 'Deployment'", "v1 Service, discovery.k8s.io/v1"},
      {"old apiVersion", s + "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\n",
       "p.yaml:24:13: apiVersion:", "use gateway.networking.k8s.io/v1"},
      {"no kind", s + "metadata: {name: x}\n", "p.yaml:24:1: apiVersion:", "needs apiVersion"},
      {"missing name", s + "apiVersion: v1\nkind: Service\nspec: {}\n",
       "p.yaml:24:1: metadata.name: required", ""},
      {"bad name", s + "apiVersion: v1\nkind: Service\nmetadata: {name: Reviews}\n",
       "p.yaml:26:18: metadata.name:", "RFC 1123"},
      {"duplicate", s + "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n",
       "p.yaml:27:9: metadata.name: duplicate Service default/reviews",
       "first defined at p.yaml:1:1"},
      {"empty selector",
       s + "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selector: {}\n  ports: "
           "[{port: 80}]\n",
       "p.yaml:28:13: spec.selector: empty", "EndpointSlice"},
      {"invalid port",
       s + "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  "
           "selector: {a: b}\n  ports:\n  - port: 0\n",
       "p.yaml:30:11: spec.ports[0].port:", "not a port"},
      {"bad targetPort",
       s + "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  "
           "selector: {a: b}\n  ports:\n  - {port: 1, targetPort: Http_1}\n",
       "p.yaml:30:27: spec.ports[0].targetPort:", "lower-case"},
      {"unnamed ports",
       s + "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  "
           "selector: {a: b}\n  ports: [{port: 1}, {port: 2}]\n",
       "p.yaml:29:11: spec.ports[0].name: required when", ""},
      {"parentRef to nothing",
       s + "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
           "spec:\n  parentRefs:\n  - kind: Service\n    name: nope\n  rules: [{}]\n",
       "p.yaml:30:11: spec.parentRefs[0].name: Service default/nope is not defined", ""},
      {"parentRef without kind",
       s + "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
           "spec:\n  parentRefs:\n  - name: reviews\n  rules: [{}]\n",
       "p.yaml:29:5: spec.parentRefs[0].kind: required", "Gateways are not supported"},
      {"backendRef to nothing",
       s + route_head + "  - backendRefs:\n    - {name: ratings, port: 9080}\n",
       "p.yaml:31:14: spec.rules[0].backendRefs[0].name: Service default/ratings", "not defined"},
      {"backendRef in another namespace",
       s + route_head + "  - backendRefs:\n    - {name: reviews, namespace: prod, port: 9080}\n",
       "p.yaml:31:14: spec.rules[0].backendRefs[0].name: Service prod/reviews", "not defined"},
      {"backendRef port", s + route_head + "  - backendRefs:\n    - {name: reviews, port: 80}\n",
       "p.yaml:31:29: spec.rules[0].backendRefs[0].port: 80 is not a port of Service "
       "default/reviews",
       "9080 (http)"},
      {"weight",
       s + route_head +
           "  - backendRefs:\n    - name: reviews\n      port: 9080\n"
           "      weight: -1\n",
       "p.yaml:33:15: spec.rules[0].backendRefs[0].weight: -1 is not a weight", ""},
      {"duration", s + route_head + "  - timeouts:\n      request: 1.5s\n",
       "p.yaml:31:16: spec.rules[0].timeouts.request: '1.5s' is not a duration", "fractions"},
      {"backendRequest > request",
       s + route_head + "  - timeouts:\n      request: 1s\n      backendRequest: 2s\n",
       "p.yaml:32:23: spec.rules[0].timeouts.backendRequest: 2s is longer", ""},
      {"regex",
       s + route_head +
           "  - matches:\n    - headers:\n      - type: RegularExpression\n"
           "        name: x-user\n        value: \"(a\"\n",
       "p.yaml:34:16: spec.rules[0].matches[0].headers[0].value:", "regular expression"},
      {"path value", s + route_head + "  - matches: [{path: {value: api}}]\n",
       "p.yaml:30:30: spec.rules[0].matches[0].path.value:", "start with '/'"},
      {"filter missing its field", s + route_head + "  - filters:\n    - type: URLRewrite\n",
       "p.yaml:31:7: spec.rules[0].filters[0].urlRewrite: required when type is URLRewrite", ""},
      {"filter with two fields",
       s + route_head +
           "  - filters:\n    - type: RequestRedirect\n      requestRedirect: {}\n"
           "      requestMirror: {backendRef: {name: reviews, port: 9080}}\n",
       "p.yaml:33:22: spec.rules[0].filters[0].requestMirror: must not be set", ""},
      {"unsupported filter",
       s + route_head +
           "  - filters:\n    - type: ResponseHeaderModifier\n"
           "      responseHeaderModifier: {}\n",
       "p.yaml:31:13: spec.rules[0].filters[0].type: filter type ResponseHeaderModifier is not "
       "supported",
       ""},
      {"mirror without a port",
       s + route_head +
           "  - backendRefs: [{name: reviews, port: 9080}]\n    filters:\n"
           "    - type: RequestMirror\n      requestMirror: {backendRef: {name: reviews-v2}}\n",
       "p.yaml:33:35: spec.rules[0].filters[0].requestMirror.backendRef.port: required", ""},
      {"redirect status",
       s + route_head +
           "  - filters:\n    - type: RequestRedirect\n"
           "      requestRedirect: {statusCode: 200}\n",
       "p.yaml:32:37: spec.rules[0].filters[0].requestRedirect.statusCode:", "301"},
      {"slice without its label",
       s + "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n"
           "addressType: IPv4\n",
       "p.yaml:26:11: metadata.labels: needs the label kubernetes.io/service-name", ""},
      {"slice address",
       s + "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: e\n"
           "  labels: {kubernetes.io/service-name: reviews}\naddressType: IPv4\nendpoints:\n"
           "- addresses: [\"::1\"]\nports: [{name: http, port: 80}]\n",
       "p.yaml:31:15: endpoints[0].addresses[0]: '::1' is not an IPv4 address", ""},
      {"mesh duration",
       s + "apiVersion: outrigger.dev/v1alpha1\nkind: Mesh\nmetadata: {name: m}\nspec:\n"
           "  endpointGracePeriod: 10\n",
       "p.yaml:28:24: spec.endpointGracePeriod: '10' is not a duration", "no unit"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::vector<std::string> errors = ErrorsOf(c.yaml);
    INFO(Show(errors));
    CHECK(HasError(errors, c.prefix, c.fragment));
  }
}

TEST_CASE("every error of a policy is reported, in file order", "[policy][errors]") {
  const std::vector<std::string> errors = ErrorsOf(R"(apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  selector: {app: a}
  ports: [{port: 99999}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: a}]
  rules:
  - backendRefs:
    - {name: b, port: 80, weight: 5}
    timeouts: {request: 5x}
---
apiVersion: v1
kind: Service
metadata: {name: c}
spec:
  bogus: true
)");
  INFO(Show(errors));
  REQUIRE(errors.size() == 4);
  CHECK(absl::StartsWith(errors[0], "p.yaml:6:18: spec.ports[0].port"));
  CHECK(absl::StartsWith(errors[1], "p.yaml:15:14: spec.rules[0].backendRefs[0].name"));
  CHECK(absl::StartsWith(errors[2], "p.yaml:16:25: spec.rules[0].timeouts.request"));
  CHECK(absl::StartsWith(errors[3], "p.yaml:22:3: spec.bogus: unknown field"));
}

TEST_CASE("a directory loads its yaml files in name order", "[policy]") {
  TempDir dir;
  dir.Write("b-services.yaml", kServices);
  dir.Write("a-mesh.yml", "apiVersion: outrigger.dev/v1alpha1\nkind: Mesh\nmetadata: {name: m}\n");
  dir.Write("c-route.yaml", R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
)");
  dir.Write("notes.txt", "not policy");
  dir.Write(".c-route.yaml.tmp.x", "not policy: an editor's or a writer's temporary file");
  fs::create_directory(fs::path(dir.path()) / "sub.yaml");

  PolicyErrors errors;
  absl::StatusOr<PolicySet> set = LoadPolicy(dir.path(), &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(set.ok());
  REQUIRE(set->files.size() == 3);
  CHECK(absl::EndsWith(set->files[0], "/a-mesh.yml"));
  CHECK(absl::EndsWith(set->files[2], "/c-route.yaml"));
  CHECK(set->resources.size() == 5);
  CHECK(set->mesh.meta.source.file == set->files[0]);

  // A route error names the file it is in.
  dir.Write("c-route.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: 1}\n");
  set = LoadPolicy(dir.path(), &errors);
  REQUIRE_FALSE(set.ok());
  CHECK(absl::StrContains(set.status().message(), dir.path() + "/c-route.yaml:4:15: spec.ports"));
}

TEST_CASE("unreadable paths are errors", "[policy]") {
  CHECK(LoadPolicy("/nonexistent/policy").status().code() == absl::StatusCode::kNotFound);
  TempDir empty;
  absl::Status s = LoadPolicy(empty.path()).status();
  CHECK(absl::StrContains(s.message(), "no *.yaml or *.yml files"));
}

TEST_CASE("YAML streams split into documents at marker lines", "[policy][yaml]") {
  auto docs = xds::SplitYamlDocuments(
      "# header comment\n---\na: 1\n--- # second\nb: 2\n...\n# only a comment\n---\n"
      "--- {c: 3}\n");
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].first_line == 1);
  CHECK(docs[0].text == "   \na: 1\n");
  CHECK(docs[1].first_line == 3);
  CHECK(docs[2].first_line == 8);
  CHECK(docs[2].text == "    {c: 3}\n");
  // "----" and "---x" are not markers; a first document needs none.
  docs = xds::SplitYamlDocuments("a: ----\n---x: 1\n");
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].first_line == 0);
}

}  // namespace outrigger::policy
