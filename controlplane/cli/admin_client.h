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
  // The mesh's trust bundle (PEM): talk TLS to a control plane that runs the mesh CA
  // (--ca-bundle FILE or OUTRIGGER_CA_BUNDLE; e.g. <ca-dir>/ca.pem).
  std::string ca_bundle;
  bool json = false;
  std::vector<std::string> positional;
  std::string error;  // set when the arguments are wrong
};

// Parses --control-plane ADDR, --ca-bundle FILE, --output table|json and positional arguments.
MeshArgs ParseMeshArgs(const std::vector<std::string>& args);

// Plaintext, or TLS verified against the bundle (the control plane's SPIFFE ID in the bundle's
// trust domain). Exits with a message when the bundle cannot be read.
std::unique_ptr<v1::MeshAdmin::Stub> Connect(const MeshArgs& args);

}  // namespace outrigger::cli

#endif  // OUTRIGGER_CONTROLPLANE_CLI_ADMIN_CLIENT_H_
