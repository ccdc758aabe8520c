// The sidecar's side of the mesh CA: makes its own P-256 key (it never leaves the process), asks
// the control plane to sign a CSR for the identity its join token names (first contact, over TLS
// that verifies the control plane against the trust bundle), and renews at about half of the
// certificate's lifetime with its current certificate (over mTLS, no token). Each new
// certificate (and the trust bundle that came with it) is handed to `on_certificate`. Runs on
// the main thread; gRPC's completion callbacks are posted to it.
#ifndef OUTRIGGER_PROXY_XDS_IDENTITY_CLIENT_H_
#define OUTRIGGER_PROXY_XDS_IDENTITY_CLIENT_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "certs/spiffe_id.h"
#include "outrigger/v1/identity.grpc.pb.h"
#include "xds/grpc_tls.h"

namespace outrigger::proxy {

struct WorkloadCertificate {
  xds::GrpcIdentity identity;  // key and chain PEM (in memory only)
  std::string bundle_pem;
  std::string spiffe_id;
  absl::Time not_after;
};

class IdentityClient {
 public:
  using OnCertificate = std::function<void(const WorkloadCertificate&)>;
  // `bundle_pem`: the roots that verify the control plane at first contact.
  static absl::StatusOr<std::unique_ptr<IdentityClient>> Create(
      boost::asio::io_context& main, std::string server, std::string bundle_pem,
      std::string join_token, std::string node_id, OnCertificate on_certificate);

  void Start();
  void Stop();
  const certs::SpiffeId& spiffe_id() const { return id_; }
  const std::optional<WorkloadCertificate>& current() const { return current_; }
  uint64_t renewals() const { return renewals_; }
  uint64_t failures() const { return failures_; }

 private:
  IdentityClient(boost::asio::io_context& main) : main_(main), timer_(main) {}
  struct Call;
  void Request();
  absl::StatusOr<WorkloadCertificate> Decode(const grpc::Status& status, const Call& call) const;
  void OnResult(absl::StatusOr<WorkloadCertificate> result);
  void ScheduleIn(absl::Duration d);

  boost::asio::io_context& main_;
  boost::asio::steady_timer timer_;
  std::string server_;
  std::string bundle_pem_;
  std::string join_token_;
  std::string node_id_;
  certs::SpiffeId id_;
  OnCertificate on_certificate_;
  std::optional<WorkloadCertificate> current_;
  uint64_t certificate_generation_ = 0;
  uint64_t channel_generation_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> retired_channel_;
  std::unique_ptr<v1::MeshCertificates::Stub> stub_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool in_flight_ = false;
  int attempt_ = 0;
  uint64_t renewals_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_XDS_IDENTITY_CLIENT_H_
