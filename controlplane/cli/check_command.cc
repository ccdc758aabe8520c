// `outrigger check`: one look at the health of the mesh, for people and for scripts (exit 1 when
// anything needs attention): proxies that rejected config or are not synced, a refused policy
// change, and certificates about to expire — a sidecar's leaf (which should have been renewed at
// half its lifetime) or the mesh CA itself.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "controlplane/cli/admin_client.h"
#include "controlplane/cli/command.h"

namespace outrigger::cli {
namespace {

int Run(const std::vector<std::string>& args);

const Command kCommand = {
    "check",
    "report proxies out of sync, refused policy and certificates about to expire",
    "usage: outrigger check [--control-plane HOST:PORT] [--ca-bundle FILE]\n"
    "                       [--leaf-warning DURATION] [--ca-warning DURATION]\n\n"
    "Warns about: proxies that rejected config (NACKED) or have not acknowledged it yet, a\n"
    "policy change the control plane refused, sidecar certificates expiring within\n"
    "--leaf-warning (default 1h: they renew at half their lifetime, so a leaf this close to\n"
    "its end means renewals fail) and a mesh CA expiring within --ca-warning (default 720h).\n"
    "Exits 1 when there is any warning.\n",
    &Run};

std::string Left(absl::Time t, absl::Time now) {
  return t <= now ? "EXPIRED" : absl::StrCat("expires in ", absl::FormatDuration(
                                                                 absl::Trunc(t - now, absl::Seconds(1))));
}

int Run(const std::vector<std::string>& all) {
  if (WantsHelp(all)) {
    std::cout << kCommand.usage;
    return kExitOk;
  }
  absl::Duration leaf_warning = absl::Hours(1), ca_warning = absl::Hours(720);
  std::vector<std::string> args;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--leaf-warning" || all[i] == "--ca-warning") {
      if (i + 1 >= all.size()) return UsageError(kCommand, all[i] + " needs a value");
      absl::Duration* d = all[i] == "--leaf-warning" ? &leaf_warning : &ca_warning;
      if (!absl::ParseDuration(all[i + 1], d)) {
        return UsageError(kCommand, all[i] + ": '" + all[i + 1] + "' is not a duration");
      }
      ++i;
    } else {
      args.push_back(all[i]);
    }
  }
  MeshArgs m = ParseMeshArgs(args);
  if (!m.error.empty()) return UsageError(kCommand, m.error);
  auto stub = Connect(m);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ProxyStatusResponse r;
  grpc::Status s = stub->ProxyStatus(&ctx, v1::ProxyStatusRequest(), &r);
  if (!s.ok()) {
    std::cerr << "outrigger check: control plane " << m.control_plane << ": " << s.error_message()
              << "\n";
    return kExitFailure;
  }
  const absl::Time now = absl::Now();
  int warnings = 0;
  auto warn = [&](const std::string& what) {
    ++warnings;
    std::cout << "WARNING " << what << "\n";
  };
  if (!r.policy_error().empty()) warn("the latest policy change was refused: " + r.policy_error());
  if (r.ca_not_after() != 0 && absl::FromUnixSeconds(r.ca_not_after()) - now < ca_warning) {
    warn("the mesh CA " + Left(absl::FromUnixSeconds(r.ca_not_after()), now) +
         ": rotate the root (see docs/operations.md)");
  }
  for (const auto& p : r.proxies()) {
    if (!p.connected()) continue;
    for (const auto& t : p.types()) {
      if (t.state() == "NACKED") {
        warn(absl::StrCat(p.node().id(), " rejected ", t.type_url(), ": ", t.nack_error()));
      } else if (t.state() == "STALE") {
        warn(absl::StrCat(p.node().id(), " has not acknowledged ", t.type_url(), " version ",
                          t.sent_version(), " yet"));
      }
    }
    if (p.certificate_not_after() != 0 &&
        absl::FromUnixSeconds(p.certificate_not_after()) - now < leaf_warning) {
      warn(absl::StrCat(p.node().id(), "'s certificate (", p.spiffe_id(), ") ",
                        Left(absl::FromUnixSeconds(p.certificate_not_after()), now),
                        ": its renewals are failing"));
    }
  }
  std::cout << (warnings == 0 ? "OK: " : "") << r.proxies_size() << " proxies, policy version "
            << r.policy_version() << ", " << warnings << " warning(s)\n";
  return warnings == 0 ? kExitOk : kExitFailure;
}

}  // namespace

const Command& CheckCommand() { return kCommand; }

}  // namespace outrigger::cli
