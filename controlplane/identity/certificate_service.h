// The MeshCertificates service: signs a sidecar's CSR for the identity its join token (first
// contact) or its current certificate (renewal, over mTLS) entitles it to, and answers with the
// chain and the trust bundle. Runs on gRPC's threads; the CA is immutable after start, and the
// record of what was issued (for proxy-status and metrics) is guarded by a mutex.
#ifndef OUTRIGGER_CONTROLPLANE_IDENTITY_CERTIFICATE_SERVICE_H_
#define OUTRIGGER_CONTROLPLANE_IDENTITY_CERTIFICATE_SERVICE_H_

#include <map>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "controlplane/identity/mesh_identity.h"
#include "outrigger/v1/identity.grpc.pb.h"

namespace outrigger::controlplane {

struct IssuedCertificate {
  std::string spiffe_id;
  absl::Time not_after;
  absl::Time issued;
};

class CertificateService final : public v1::MeshCertificates::CallbackService {
 public:
  explicit CertificateService(const MeshIdentity* identity) : identity_(identity) {}

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* context,
                                 const v1::SignRequest* request,
                                 v1::SignResponse* response) override;

  // node id -> the last certificate issued to it.
  std::map<std::string, IssuedCertificate> Issued() const;
  uint64_t signed_total() const;
  uint64_t refused_total() const;

 private:
  grpc::Status DoSign(grpc::CallbackServerContext* context, const v1::SignRequest& request,
                      v1::SignResponse* response);
  const MeshIdentity* identity_;
  mutable std::mutex mu_;
  std::map<std::string, IssuedCertificate> issued_;
  uint64_t signed_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_IDENTITY_CERTIFICATE_SERVICE_H_
