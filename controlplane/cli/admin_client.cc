// See admin_client.h.
#include "controlplane/cli/admin_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "certs/certificate.h"
#include "controlplane/cli/command.h"
#include "xds/common/file.h"
#include "xds/grpc_tls.h"

namespace outrigger::cli {

MeshArgs ParseMeshArgs(const std::vector<std::string>& args) {
  MeshArgs out;
  if (const char* env = std::getenv("OUTRIGGER_CONTROL_PLANE")) out.control_plane = env;
  if (const char* env = std::getenv("OUTRIGGER_CA_BUNDLE")) out.ca_bundle = env;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (a.size() > flag.size() && a.compare(0, flag.size() + 1, flag + "=") == 0) {
        return a.substr(flag.size() + 1);
      }
      if (i + 1 < args.size()) return args[++i];
      out.error = flag + " needs a value";
      return "";
    };
    if (a == "--control-plane" || a.rfind("--control-plane=", 0) == 0) {
      out.control_plane = value("--control-plane");
    } else if (a == "--ca-bundle" || a.rfind("--ca-bundle=", 0) == 0) {
      out.ca_bundle = value("--ca-bundle");
    } else if (a == "--output" || a.rfind("--output=", 0) == 0 || a == "-o") {
      const std::string v = value(a == "-o" ? "-o" : "--output");
      if (v == "json") {
        out.json = true;
      } else if (v != "table" && out.error.empty()) {
        out.error = "--output: '" + v + "' is not table or json";
      }
    } else if (a.rfind("--", 0) == 0) {
      if (out.error.empty()) out.error = "unknown flag '" + a + "'";
    } else {
      out.positional.push_back(a);
    }
  }
  if (out.error.empty() && out.control_plane.empty()) {
    out.error = "no control plane: give --control-plane HOST:PORT or set OUTRIGGER_CONTROL_PLANE";
  }
  return out;
}

std::unique_ptr<v1::MeshAdmin::Stub> Connect(const MeshArgs& args) {
  if (args.ca_bundle.empty()) {
    return v1::MeshAdmin::NewStub(
        grpc::CreateChannel(args.control_plane, grpc::InsecureChannelCredentials()));
  }
  auto pem = ReadFile(args.ca_bundle);
  absl::Status problem = pem.status();
  if (pem.ok()) problem = certs::Certificate::ChainFromPem(*pem).status();
  if (!problem.ok()) {
    std::cerr << "outrigger: --ca-bundle " << args.ca_bundle << ": not a PEM trust bundle: "
              << problem.message() << "\n";
    std::exit(kExitUsage);
  }
  return v1::MeshAdmin::NewStub(grpc::CreateChannel(
      args.control_plane,
      // Any trust domain: the chain must lead to one of the bundle's roots anyway.
      xds::MeshChannelCredentials(*pem, xds::ControlPlaneSpiffeId("*"), std::nullopt)));
}

}  // namespace outrigger::cli
