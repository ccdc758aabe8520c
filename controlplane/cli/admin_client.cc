// See admin_client.h.
#include "controlplane/cli/admin_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>

namespace outrigger::cli {

MeshArgs ParseMeshArgs(const std::vector<std::string>& args) {
  MeshArgs out;
  if (const char* env = std::getenv("OUTRIGGER_CONTROL_PLANE")) out.control_plane = env;
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

std::unique_ptr<v1::MeshAdmin::Stub> Connect(const std::string& address) {
  return v1::MeshAdmin::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

}  // namespace outrigger::cli
