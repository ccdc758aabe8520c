// outrigger-control's main loop: watches the policy files and validates every change whole
// (an invalid change is refused and the last good policy stays in force), serves the discovery
// stream and the CLI's admin RPCs over gRPC, and /ready and /metrics over HTTP.
#ifndef OUTRIGGER_CONTROLPLANE_SERVER_CONTROL_PLANE_H_
#define OUTRIGGER_CONTROLPLANE_SERVER_CONTROL_PLANE_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "controlplane/identity/certificate_service.h"
#include "controlplane/identity/mesh_identity.h"
#include "controlplane/mesh/view_builder.h"
#include "controlplane/server/discovery_server.h"

namespace grpc {
class Server;
}

namespace outrigger::controlplane {

struct ControlOptions {
  std::string policy_path;
  std::string xds_address = "127.0.0.1:15010";
  std::string admin_address;  // empty: none
  DiscoveryOptions discovery;
  // Set ca_dir to run the mesh CA: TLS on --xds, join tokens, certificates for the sidecars,
  // and discovery streams only from proxies with a mesh certificate. Empty: plaintext (dev).
  IdentityOptions identity;
};

class ControlPlane {
 public:
  explicit ControlPlane(ControlOptions options);
  ~ControlPlane();

  // Loads the policy (it must be valid to start), binds the addresses and starts serving.
  absl::Status Start();
  // Runs until SIGTERM/SIGINT. Returns the exit code.
  int Run();

  // For the admin service, on the control loop.
  boost::asio::io_context& io_context() { return ioc_; }
  DiscoveryServer& discovery() { return *discovery_; }
  const std::string& policy_version() const { return policy_version_; }
  const std::string& policy_error() const { return policy_error_; }
  const std::string& policy_path() const { return options_.policy_path; }

 private:
  // Loads the files (after the watcher saw them change); an invalid policy is refused.
  void Reload(const char* why);
  // Puts a valid policy in force and pushes what changed.
  void Adopt(policy::PolicySet policy, const char* why);
  class AdminService;
  class HttpAdmin;
  void Watch();
  std::string Fingerprint() const;
  std::string RenderMetrics() const;
  std::string RenderIdentityMetrics() const;

  ControlOptions options_;
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer watch_timer_{ioc_};
  ViewBuilderImpl views_;
  std::unique_ptr<DiscoveryServer> discovery_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<MeshIdentity> identity_;
  std::unique_ptr<CertificateService> certificates_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpAdmin> http_;
  std::string fingerprint_;
  std::string policy_version_;
  std::string policy_error_;
  uint64_t reloads_ = 0;
  uint64_t policy_errors_ = 0;
};

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_SERVER_CONTROL_PLANE_H_
