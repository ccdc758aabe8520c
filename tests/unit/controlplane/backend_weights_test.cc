// Canary weights written back to policy files (controlplane/policy/backend_weights.h): only the
// weight values change, a missing weight is inserted at the right indentation, and an edit that
// would leave the policy invalid is refused with the file untouched.
#include "controlplane/policy/backend_weights.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "controlplane/policy/loader.h"
#include "tests/unit/controlplane/temp_dir.h"

namespace outrigger::policy {
namespace {

using testing::TempDir;

const char kServices[] = R"(apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v1}
spec: {selector: {app: reviews, version: v1}, ports: [{port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2}
spec: {selector: {app: reviews, version: v2}, ports: [{port: 9080}]}
)";

// Comments, odd spacing and quoting around the weights must survive the edit.
const char kRoute[] = R"(# The reviews canary.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews   # keep this comment
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
    - matches: [{headers: [{name: x-canary, value: "1"}]}]
      backendRefs:
        - name: reviews-v2
          port: 9080
    - backendRefs:
        - name: reviews-v1
          weight:   90    # most traffic
          port: 9080
        -   name: reviews-v2
            port: 9080
            weight: "10"
)";

uint32_t WeightOf(const PolicySet& set, size_t rule, size_t backend) {
  return set.FindHttpRoute({"default", "reviews"})->rules[rule].backend_refs[backend].weight;
}

}  // namespace

TEST_CASE("only the weight values change", "[weights]") {
  TempDir dir;
  dir.Write("services.yaml", kServices);
  const std::string route = dir.Write("route.yaml", kRoute);
  PolicySet written;
  absl::Status s = SetBackendWeights(dir.path(), "default", "reviews",
                                     {{"reviews-v1", 50}, {"reviews-v2", 1000000}}, &written);
  REQUIRE(s.ok());
  // reviews-v2 is in both rules: both change; the first had no weight and gets one.
  const std::string expected = absl::StrReplaceAll(
      kRoute, {{"weight:   90    # most", "weight:   50    # most"},
               {"weight: \"10\"", "weight: 1000000"},
               {"        - name: reviews-v2\n          port: 9080\n",
                "        - name: reviews-v2\n          port: 9080\n          weight: 1000000\n"}});
  CHECK(TempDir::Read(route) == expected);
  CHECK(TempDir::Read(dir.path() + "/services.yaml") == kServices);
  CHECK(WeightOf(written, 0, 0) == 1000000);
  CHECK(WeightOf(written, 1, 0) == 50);
  CHECK(WeightOf(written, 1, 1) == 1000000);

  // And back: the file is the same as when we started, but for the inserted line.
  REQUIRE(
      SetBackendWeights(dir.path(), "", "reviews", {{"reviews-v1", 90}, {"reviews-v2", 10}}).ok());
  CHECK(TempDir::Read(route) ==
        absl::StrReplaceAll(kRoute, {{"weight: \"10\"", "weight: 10"},
                                     {"          port: 9080\n    - backendRefs",
                                      "          port: 9080\n          weight: 10\n    - "
                                      "backendRefs"}}));
}

TEST_CASE("a missing weight is inserted at the backendRef's indentation", "[weights]") {
  TempDir dir;
  dir.Write("services.yaml", kServices);
  // Flow mappings, a last line without a newline, and Windows line endings.
  const std::string route = dir.Write(
      "route.yaml",
      "apiVersion: gateway.networking.k8s.io/v1\r\nkind: HTTPRoute\r\nmetadata: {name: reviews}"
      "\r\nspec:\r\n  parentRefs: [{kind: Service, name: reviews}]\r\n  rules:\r\n  - backendRefs:"
      "\r\n    - {name: reviews-v1, port: 9080}\r\n    - name: reviews-v2\r\n      port: 9080");
  PolicySet written;
  REQUIRE(SetBackendWeights(dir.path(), "default", "reviews",
                            {{"reviews-v1", 3}, {"reviews-v2", 7}}, &written)
              .ok());
  CHECK(TempDir::Read(route) ==
        "apiVersion: gateway.networking.k8s.io/v1\r\nkind: HTTPRoute\r\nmetadata: {name: reviews}"
        "\r\nspec:\r\n  parentRefs: [{kind: Service, name: reviews}]\r\n  rules:\r\n  - "
        "backendRefs:\r\n    - {weight: 3, name: reviews-v1, port: 9080}\r\n    - name: "
        "reviews-v2\r\n      port: 9080\r\n      weight: 7\r\n");
  CHECK(WeightOf(written, 0, 0) == 3);
  CHECK(WeightOf(written, 0, 1) == 7);
}

TEST_CASE("a change that makes the policy invalid is refused", "[weights]") {
  TempDir dir;
  dir.Write("services.yaml", kServices);
  const std::string route = dir.Write("route.yaml", kRoute);

  absl::Status s = SetBackendWeights(dir.path(), "default", "reviews", {{"reviews-v1", 2000000}});
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.message(), "nothing was written"));
  CHECK(absl::StrContains(s.message(),
                          "route.yaml:15:21: spec.rules[1].backendRefs[0].weight: 2000000 is not "
                          "a weight"));
  CHECK(TempDir::Read(route) == kRoute);

  s = SetBackendWeights(dir.path(), "default", "reviews", {{"reviews-v1", -1}});
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(TempDir::Read(route) == kRoute);

  s = SetBackendWeights(dir.path(), "default", "reviews", {{"ratings", 5}});
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.message(),
                          "'ratings' is not a backend of HTTPRoute default/reviews "
                          "(its backends: reviews-v1, reviews-v2)"));
  CHECK(SetBackendWeights(dir.path(), "prod", "reviews", {{"reviews-v1", 5}}).code() ==
        absl::StatusCode::kNotFound);

  // A policy that is already invalid elsewhere is not written either.
  dir.Write("services.yaml", absl::StrCat(kServices, "---\napiVersion: v1\nkind: Nope\n"));
  s = SetBackendWeights(dir.path(), "default", "reviews", {{"reviews-v1", 5}});
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.message(), "the policy is invalid"));
  CHECK(TempDir::Read(route) == kRoute);
}

TEST_CASE("no temporary file is left behind", "[weights]") {
  TempDir dir;
  dir.Write("services.yaml", kServices);
  dir.Write("route.yaml", kRoute);
  REQUIRE(SetBackendWeights(dir.path(), "default", "reviews", {{"reviews-v1", 1}}).ok());
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  CHECK(files == 2);
  CHECK(LoadPolicy(dir.path()).ok());
}

}  // namespace outrigger::policy
