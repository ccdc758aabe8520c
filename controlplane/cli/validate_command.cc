// `outrigger validate PATH`: loads the policy at PATH offline, exactly as the control plane
// would, and prints every error ("FILE:LINE:COL: field.path: problem") or a one-line summary.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/cli/command.h"
#include "controlplane/policy/loader.h"

namespace outrigger::cli {
namespace {

constexpr absl::string_view kUsage = R"(usage: outrigger validate PATH

Checks mesh policy without a control plane: PATH is a YAML file or a directory of *.yaml / *.yml
files, each holding one or more "---"-separated documents of these kinds:
  v1 Service, discovery.k8s.io/v1 EndpointSlice, gateway.networking.k8s.io/v1 HTTPRoute,
  outrigger.dev/v1alpha1 Mesh, TrafficPolicy, HTTPFault, LocalRateLimit, AuthorizationPolicy
  and MeshTLS
The checks are the control plane's own. Every error is printed as FILE:LINE:COL: field: problem.

Exit status: 0 when the policy is valid, 1 when it is not, 2 on a usage error.
)";

std::string Plural(size_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

int Run(const std::vector<std::string>& args);

const Command& Self() {
  static const Command command{"validate", "check policy files offline, listing every error",
                               kUsage, &Run};
  return command;
}

int Run(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << kUsage;
    return kExitOk;
  }
  if (args.size() != 1)
    return UsageError(Self(), args.empty() ? "PATH is required" : "expected one PATH");
  if (!args[0].empty() && args[0][0] == '-') {
    return UsageError(Self(), absl::StrCat("unknown flag '", args[0], "'"));
  }
  policy::PolicyErrors errors;
  absl::StatusOr<policy::PolicySet> policy = policy::LoadPolicy(args[0], &errors);
  if (!policy.ok()) {
    for (const std::string& e : errors.Sorted()) std::cerr << e << "\n";
    std::cerr << args[0] << ": " << Plural(errors.size(), "error", "errors") << "\n";
    return kExitFailure;
  }
  const std::string counts = absl::StrJoin(
      policy->CountByKind(), ", ",
      [](std::string* out, const auto& c) { absl::StrAppend(out, c.second, " ", c.first); });
  std::cout << Plural(policy->files.size(), "file", "files") << ", "
            << Plural(policy->resources.size(), "resource", "resources")
            << (counts.empty() ? "" : ": ") << counts << " OK\n";
  return kExitOk;
}

}  // namespace

const Command& ValidateCommand() { return Self(); }

}  // namespace outrigger::cli
