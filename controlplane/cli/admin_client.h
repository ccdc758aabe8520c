// What the CLI's mesh commands share: finding the control plane (--control-plane ADDR or
// OUTRIGGER_CONTROL_PLANE) and a MeshAdmin stub for it.
#ifndef OUTRIGGER_CONTROLPLANE_CLI_ADMIN_CLIENT_H_
#define OUTRIGGER_CONTROLPLANE_CLI_ADMIN_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "outrigger/v1/admin.grpc.pb.h"

namespace outrigger::cli {

struct MeshArgs {
  std::string control_plane;
  bool json = false;
  std::vector<std::string> positional;
  std::string error;  // set when the arguments are wrong
};

// Parses --control-plane ADDR, --output table|json and positional arguments.
MeshArgs ParseMeshArgs(const std::vector<std::string>& args);

std::unique_ptr<v1::MeshAdmin::Stub> Connect(const std::string& address);

}  // namespace outrigger::cli

#endif  // OUTRIGGER_CONTROLPLANE_CLI_ADMIN_CLIENT_H_
