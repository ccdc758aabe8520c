// `outrigger canary ROUTE BACKEND=WEIGHT ...`: changes an HTTPRoute's backend weights live. The
// control plane validates the change, writes it back to the policy file atomically, and pushes
// it to every proxy; this command returns once the file is written.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "controlplane/cli/admin_client.h"
#include "controlplane/cli/command.h"

namespace outrigger::cli {
namespace {

int Run(const std::vector<std::string>& args);

const Command kCommand = {
    "canary",
    "shift traffic between an HTTPRoute's backends (writes the policy file)",
    "usage: outrigger canary [NAMESPACE/]ROUTE BACKEND=WEIGHT [BACKEND=WEIGHT...]\n"
    "                        [--control-plane HOST:PORT]\n\n"
    "Sets the weights of the named backendRefs (Services) of HTTPRoute ROUTE in every rule.\n"
    "The control plane checks the whole edited policy, writes the file atomically (keeping its\n"
    "comments and layout), and pushes the new split to every proxy. Example:\n\n"
    "  outrigger canary reviews reviews-v1=90 reviews-v2=10\n",
    &Run};

int Run(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << kCommand.usage;
    return kExitOk;
  }
  MeshArgs m = ParseMeshArgs(args);
  if (!m.error.empty()) return UsageError(kCommand, m.error);
  if (m.positional.size() < 2) return UsageError(kCommand, "needs ROUTE and BACKEND=WEIGHT");
  v1::SetWeightsRequest req;
  std::vector<std::string> route = absl::StrSplit(m.positional[0], '/');
  if (route.size() == 2) {
    req.set_namespace_(route[0]);
    req.set_route(route[1]);
  } else if (route.size() == 1) {
    req.set_namespace_("default");
    req.set_route(route[0]);
  } else {
    return UsageError(kCommand, "ROUTE is NAME or NAMESPACE/NAME");
  }
  for (size_t i = 1; i < m.positional.size(); ++i) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(m.positional[i], absl::MaxSplits('=', 1));
    uint32_t w = 0;
    if (kv.first.empty() || !absl::SimpleAtoi(kv.second, &w) || w > 1000000) {
      return UsageError(kCommand, "'" + m.positional[i] +
                                      "': expected BACKEND=WEIGHT with WEIGHT 0..1000000");
    }
    (*req.mutable_weights())[kv.first] = w;
  }
  auto stub = Connect(m);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SetWeightsResponse r;
  grpc::Status s = stub->SetWeights(&ctx, req, &r);
  if (!s.ok()) {
    std::cerr << "outrigger canary: " << s.error_message() << "\n";
    return kExitFailure;
  }
  std::cout << "weights of " << req.namespace_() << "/" << req.route() << " set; policy version "
            << r.policy_version() << " written to " << r.file() << "\n";
  return kExitOk;
}

}  // namespace

const Command& CanaryCommand() { return kCommand; }

}  // namespace outrigger::cli
