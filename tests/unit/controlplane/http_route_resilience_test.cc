// HTTPRoute rules' resilience fields (controlplane/policy/kinds/http_route_retry.cc,
// http_route_filters.cc): retry (GEP-1731 and our additions), timeouts.backendRequest,
// RequestMirror with percent or fraction, and ExtensionRef filters to HTTPFault and
// LocalRateLimit. Valid rules load; every check reports FILE:LINE and the field path.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/loader.h"
#include "tests/unit/controlplane/policy_checks.h"

namespace outrigger::policy {
namespace {

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
apiVersion: outrigger.dev/v1alpha1
kind: HTTPFault
metadata: {name: chaos, namespace: shop}
spec: {abort: {httpStatus: 503, percentage: 5}}
---
apiVersion: outrigger.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: gentle, namespace: shop}
spec: {maxTokens: 10}
---
)";

// An HTTPRoute for catalog in shop whose rules are `rules` (indented by 2).
std::string Route(const std::string& rules) {
  return absl::StrCat(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, "
      "namespace: shop}\nspec:\n  parentRefs: [{kind: Service, name: catalog}]\n  rules:\n",
      rules);
}

struct Case {
  const char* what;
  std::string rules;
  std::string marker;  // text on the line the error must point at (in the route)
  std::string path;
  std::string fragment;
};

void CheckCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string text = absl::StrCat(kShop, Route(c.rules));
    const std::vector<std::string> errors = PolicyErrorsOf(text);
    INFO(Show(errors));
    std::string prefix = Where(text, c.marker, "kind: HTTPRoute");
    prefix.resize(prefix.rfind(':') + 1);
    INFO("expected at " << prefix << " " << c.path);
    CHECK(std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
      return absl::StartsWith(e, prefix) && absl::StrContains(e, absl::StrCat(" ", c.path, ": ")) &&
             absl::StrContains(e, c.fragment);
    }));
  }
}

}  // namespace

TEST_CASE("HTTPRoute retry, backendRequest, mirrors and extension filters load",
          "[policy][route]") {
  const std::string text = absl::StrCat(kShop, Route(R"(  - matches: [{path: {value: /api}}]
    filters:
      - type: ExtensionRef
        extensionRef: {group: outrigger.dev, kind: HTTPFault, name: chaos}
      - type: ExtensionRef
        extensionRef: {group: outrigger.dev, kind: LocalRateLimit, name: gentle}
      - type: RequestMirror
        requestMirror:
          backendRef: {name: catalog-v2, port: 80}
          percent: 50
      - type: RequestMirror
        requestMirror:
          backendRef: {name: catalog-v1, port: 80}
          fraction: {numerator: 1, denominator: 8}
    backendRefs: [{name: catalog-v1, port: 80}]
    retry:
      codes: [500, 503]
      attempts: 2
      backoff: 25ms
      maxBackoff: 1s
      retryOn: [gateway-error, connect-failure, unavailable, refused-stream]
      retryNonIdempotent: true
      maxRetryBodyBytes: 131072
    timeouts: {request: 2s, backendRequest: 500ms}
  - backendRefs: [{name: catalog-v1, port: 80}]
    retry: {attempts: 0}
  - matches: [{path: {value: /m}}]
    filters:
      - type: RequestMirror
        requestMirror: {backendRef: {name: catalog-v2, port: 80}, fraction: {numerator: 1}}
    backendRefs: [{name: catalog-v1, port: 80}]
)"));
  PolicyErrors errors;
  PolicySet set = BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(Show(errors.Sorted()));
  REQUIRE(errors.empty());
  const HttpRoute& route = *set.FindHttpRoute({"shop", "r"});
  REQUIRE(route.rules.size() == 3);
  const RouteRule& r0 = route.rules[0];
  REQUIRE(r0.filters.size() == 4);
  REQUIRE(r0.filters[0].extension_ref);
  CHECK(r0.filters[0].type == RouteFilter::Type::kExtensionRef);
  CHECK(r0.filters[0].extension_ref->kind == "HTTPFault");
  CHECK(r0.filters[0].extension_ref->key() == ObjectKey{"shop", "chaos"});
  CHECK(r0.filters[1].extension_ref->kind == "LocalRateLimit");
  REQUIRE(r0.filters[2].request_mirror);
  CHECK(r0.filters[2].request_mirror->backend_ref.key() == ObjectKey{"shop", "catalog-v2"});
  CHECK(r0.filters[2].request_mirror->percent == 50.0);
  CHECK(r0.filters[3].request_mirror->percent == 12.5);  // 1/8
  REQUIRE(r0.retry);
  CHECK(r0.retry->codes == std::vector<uint32_t>{500, 503});
  CHECK(r0.retry->attempts == 2u);
  CHECK(r0.retry->backoff == absl::Milliseconds(25));
  CHECK(r0.retry->max_backoff == absl::Seconds(1));
  CHECK(r0.retry->retry_on == std::vector<std::string>{"gateway-error", "connect-failure",
                                                       "unavailable", "refused-stream"});
  CHECK(r0.retry->retry_non_idempotent);
  CHECK(r0.retry->max_retry_body_bytes == 131072u);
  CHECK(r0.timeouts.backend_request == absl::Milliseconds(500));

  const RouteRule& r1 = route.rules[1];
  REQUIRE(r1.retry);
  CHECK(r1.retry->attempts == 0u);
  CHECK(r1.retry->codes.empty());
  CHECK_FALSE(r1.retry->backoff);
  CHECK_FALSE(r1.retry->max_backoff);
  CHECK_FALSE(r1.retry->max_retry_body_bytes);
  CHECK_FALSE(r1.retry->retry_non_idempotent);
  CHECK_FALSE(route.rules[0].filters[0].request_mirror);
  // fraction's denominator defaults to 100.
  CHECK(route.rules[2].filters[0].request_mirror->percent == 1.0);
  CHECK_FALSE(route.rules[2].retry);
}

TEST_CASE("HTTPRoute resilience errors name the file, line and field", "[policy][route][errors]") {
  CheckCases({
      {"retry unknown field",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      attempt: 2\n",
       "attempt", "spec.rules[0].retry.attempt", "unknown field 'attempt'"},
      {"retry code",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      codes: [503, 200]\n",
       "200", "spec.rules[0].retry.codes[1]", "only 400 to 599"},
      {"retry code twice",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      codes: [503, 503]\n",
       "503", "spec.rules[0].retry.codes[1]", "listed twice"},
      {"attempts", "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n      attempts: 11\n",
       "11", "spec.rules[0].retry.attempts", "0 to 10"},
      {"backoff 0s",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n      backoff: 0s\n", "0s",
       "spec.rules[0].retry.backoff", "longer than 0"},
      {"maxBackoff < backoff",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n      backoff: 100ms\n"
       "      maxBackoff: 10ms\n",
       "10ms", "spec.rules[0].retry.maxBackoff", "shorter than backoff (100ms)"},
      {"maxBackoff < default backoff",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n      maxBackoff: 10ms\n", "10ms",
       "spec.rules[0].retry.maxBackoff", "25ms, the default"},
      {"retryOn",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      retryOn: [5xx, timeout]\n",
       "timeout", "spec.rules[0].retry.retryOn[1]", "'timeout' is not a retry condition"},
      {"retriable-status-codes without codes",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      retryOn: [retriable-status-codes]\n",
       "retriable-status-codes]", "spec.rules[0].retry.retryOn", "needs the codes"},
      {"maxRetryBodyBytes",
       "  - backendRefs: [{name: catalog, port: 80}]\n    retry:\n"
       "      maxRetryBodyBytes: 1000000000\n",
       "1000000000", "spec.rules[0].retry.maxRetryBodyBytes", "0 to 67108864"},
      {"retry on a redirect",
       "  - filters:\n      - type: RequestRedirect\n        requestRedirect: {statusCode: 301}\n"
       "    retry:\n      attempts: 1\n",
       "attempts: 1", "spec.rules[0].retry", "forwards nothing to retry"},
      {"backendRequest > request",
       "  - backendRefs: [{name: catalog, port: 80}]\n    timeouts:\n      request: 1s\n"
       "      backendRequest: 2s\n",
       "2s", "spec.rules[0].timeouts.backendRequest", "longer than the request timeout (1s)"},
      {"mirror percent",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: catalog-v2, port: 80}\n"
       "          percent: 150\n",
       "150", "spec.rules[0].filters[0].requestMirror.percent", "0 to 100"},
      {"mirror percent and fraction",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: catalog-v2, port: 80}\n          percent: 10\n"
       "          fraction: {numerator: 1}\n",
       "fraction:", "spec.rules[0].filters[0].requestMirror.fraction", "not both"},
      {"mirror fraction > 1",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: catalog-v2, port: 80}\n"
       "          fraction:\n            numerator: 3\n            denominator: 2\n",
       "numerator: 3", "spec.rules[0].filters[0].requestMirror.fraction.numerator",
       "more than the denominator (2)"},
      {"mirror fraction denominator 0",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: catalog-v2, port: 80}\n"
       "          fraction:\n            numerator: 0\n            denominator: 0\n",
       "denominator: 0", "spec.rules[0].filters[0].requestMirror.fraction.denominator",
       "at least 1"},
      {"mirror without backendRef",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n          percent: 5\n",
       "percent: 5", "spec.rules[0].filters[0].requestMirror.backendRef", "required"},
      {"mirror to nothing",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: nope, port: 80}\n",
       "nope", "spec.rules[0].filters[0].requestMirror.backendRef.name",
       "Service shop/nope is not defined"},
      {"mirror on a redirect",
       "  - filters:\n      - type: RequestRedirect\n        requestRedirect: {statusCode: 301}\n"
       "      - type: RequestMirror\n        requestMirror:\n"
       "          backendRef: {name: catalog-v2, port: 80}\n",
       "type: RequestMirror", "spec.rules[0].filters[1].type", "forwards nothing to mirror"},
      {"extension group",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n        extensionRef:\n          group: example.com\n"
       "          kind: HTTPFault\n          name: chaos\n",
       "example.com", "spec.rules[0].filters[0].extensionRef.group",
       "'example.com' is not supported: extension filters are of group outrigger.dev"},
      {"extension kind",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n        extensionRef:\n          group: outrigger.dev\n"
       "          kind: CORS\n          name: chaos\n",
       "CORS", "spec.rules[0].filters[0].extensionRef.kind",
       "'CORS' is not supported: an extension filter is one of HTTPFault, LocalRateLimit"},
      {"extension without name",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n        extensionRef:\n          group: outrigger.dev\n"
       "          kind: HTTPFault\n",
       "group: outrigger.dev", "spec.rules[0].filters[0].extensionRef.name", "required"},
      {"missing HTTPFault",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n        extensionRef:\n          group: outrigger.dev\n"
       "          kind: HTTPFault\n          name: missing\n",
       "missing", "spec.rules[0].filters[0].extensionRef.name",
       "HTTPFault shop/missing is not defined in the policy"},
      {"missing LocalRateLimit (another namespace's does not count)",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n        extensionRef:\n          group: outrigger.dev\n"
       "          kind: LocalRateLimit\n          name: chaos\n",
       "name: chaos", "spec.rules[0].filters[0].extensionRef.name",
       "LocalRateLimit shop/chaos is not defined"},
      {"two faults in a rule",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n"
       "      - type: ExtensionRef\n"
       "        extensionRef: {group: outrigger.dev, kind: HTTPFault, name: chaos}\n"
       "      - type: ExtensionRef\n"
       "        extensionRef: {group: outrigger.dev, kind: HTTPFault, name: chaos2}\n",
       "chaos2", "spec.rules[0].filters[1].extensionRef.kind", "a rule takes one HTTPFault"},
      {"extensionRef field missing",
       "  - backendRefs: [{name: catalog, port: 80}]\n    filters:\n      - type: ExtensionRef\n",
       "type: ExtensionRef", "spec.rules[0].filters[0].extensionRef",
       "required when type is ExtensionRef"},
  });
}

TEST_CASE("backendRequest may not outlast the Mesh's default request timeout",
          "[policy][route][errors]") {
  const std::string route = Route(
      "  - backendRefs: [{name: catalog, port: 80}]\n    timeouts:\n      backendRequest: 3s\n");
  const std::string mesh =
      "---\napiVersion: outrigger.dev/v1alpha1\nkind: Mesh\nmetadata: {name: m}\n"
      "spec: {defaultTimeout: 2s}\n";
  const std::string text = absl::StrCat(kShop, route, mesh);
  const std::vector<std::string> errors = PolicyErrorsOf(text);
  INFO(Show(errors));
  CHECK(testing::HasError(errors, Where(text, "3s"),
                          "spec.rules[0].timeouts.backendRequest: 3s is longer than the request "
                          "timeout this rule takes from Mesh.spec.defaultTimeout (2s)"));
  // Within it, or with the rule's own request timeout: fine.
  CHECK(
      PolicyErrorsOf(absl::StrCat(kShop, route, mesh.substr(0, mesh.find("2s")), "3s}\n")).empty());
}

}  // namespace outrigger::policy
