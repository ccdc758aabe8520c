// `outrigger proxy-status`: every proxy the control plane knows, its service and labels, and per
// resource type whether it has the latest config (SYNCED), not yet (STALE), or rejected it
// (NACKED, with the proxy's error).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "controlplane/cli/admin_client.h"
#include "controlplane/cli/command.h"
#include "google/protobuf/util/json_util.h"

namespace outrigger::cli {
namespace {

int Run(const std::vector<std::string>& args);

const Command kCommand = {
    "proxy-status",
    "show each proxy's config sync state (SYNCED, STALE, NACKED)",
    "usage: outrigger proxy-status [--control-plane HOST:PORT] [--ca-bundle FILE]\n"
    "                              [--output table|json]\n\n"
    "--ca-bundle (or OUTRIGGER_CA_BUNDLE): the mesh's trust bundle, to talk TLS to a control\n"
    "plane that runs the mesh CA (e.g. <ca-dir>/ca.pem).\n\n"
    "Lists every proxy connected to the control plane (or disconnected within the endpoint\n"
    "grace period): its id, service, labels, and for clusters, endpoints and routes whether it\n"
    "applied the latest version (SYNCED), has not answered yet (STALE) or rejected it (NACKED,\n"
    "followed by the proxy's error). Also shows a policy change the control plane refused.\n"
    "The control plane's address may come from OUTRIGGER_CONTROL_PLANE.\n",
    &Run};

std::string ShortType(const std::string& type_url) {
  if (type_url.find("ClusterLoadAssignment") != std::string::npos) return "endpoints";
  if (type_url.find("RouteConfiguration") != std::string::npos) return "routes";
  if (type_url.find("InboundPolicy") != std::string::npos) return "inbound";
  if (type_url.find("Cluster") != std::string::npos) return "clusters";
  return type_url;
}

int Run(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << kCommand.usage;
    return kExitOk;
  }
  MeshArgs m = ParseMeshArgs(args);
  if (!m.error.empty()) return UsageError(kCommand, m.error);
  if (!m.positional.empty()) return UsageError(kCommand, "takes no arguments");
  auto stub = Connect(m);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ProxyStatusResponse r;
  grpc::Status s = stub->ProxyStatus(&ctx, v1::ProxyStatusRequest(), &r);
  if (!s.ok()) {
    std::cerr << "outrigger proxy-status: control plane " << m.control_plane << ": "
              << s.error_message() << "\n";
    return kExitFailure;
  }
  if (m.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = true;
    o.preserve_proto_field_names = true;
    o.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(r, &json, o);
    std::cout << json;
    return kExitOk;
  }
  const absl::Time now = absl::Now();
  // Time left, as "23h59m" / "42s" / "EXPIRED"; "-" without a certificate.
  auto left = [&](int64_t not_after) -> std::string {
    if (not_after == 0) return "-";
    const absl::Duration d = absl::FromUnixSeconds(not_after) - now;
    if (d <= absl::ZeroDuration()) return "EXPIRED";
    return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1)));
  };
  std::cout << absl::StrFormat("%-32s %-24s %-18s %-10s %-10s %-10s %s\n", "PROXY", "SERVICE",
                               "LABELS", "CLUSTERS", "ENDPOINTS", "ROUTES", "CERT EXPIRES IN");
  bool any_nack = false;
  for (const auto& p : r.proxies()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : p.node().labels()) labels.push_back(absl::StrCat(k, "=", v));
    std::sort(labels.begin(), labels.end());
    std::map<std::string, const v1::ProxyTypeStatus*> by_type;
    for (const auto& t : p.types()) by_type[ShortType(t.type_url())] = &t;
    auto state = [&](const char* t) -> std::string {
      if (!p.connected()) return "GONE";
      auto it = by_type.find(t);
      return it == by_type.end() ? "NOT_SENT" : it->second->state();
    };
    std::cout << absl::StrFormat("%-32s %-24s %-18s %-10s %-10s %-10s %s\n", p.node().id(),
                                 absl::StrCat(p.node().service(), ".", p.node().namespace_()),
                                 labels.empty() ? "-" : absl::StrJoin(labels, ","),
                                 state("clusters"), state("endpoints"), state("routes"),
                                 left(p.certificate_not_after()));
    for (const auto& t : p.types()) {
      if (t.state() == "NACKED") {
        any_nack = true;
        std::cout << "    " << ShortType(t.type_url()) << " version " << t.sent_version()
                  << " rejected: " << t.nack_error() << "\n";
      }
    }
  }
  std::cout << "\npolicy version " << r.policy_version() << "\n";
  if (r.ca_not_after() != 0) std::cout << "mesh CA expires in " << left(r.ca_not_after()) << "\n";
  if (!r.policy_error().empty()) {
    std::cout << "the latest policy change was REFUSED (the version above stays in force):\n"
              << r.policy_error() << "\n";
  }
  return any_nack ? kExitFailure : kExitOk;
}

}  // namespace

const Command& ProxyStatusCommand() { return kCommand; }

}  // namespace outrigger::cli
