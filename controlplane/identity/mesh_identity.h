// The control plane's identity state: the mesh CA (created on first start and persisted in
// --ca-dir with its key 0600, or loaded from the user's --ca-cert/--ca-key, e.g. an intermediate
// under their own root), the trust bundle (the CA's root plus any extra roots in
// <ca-dir>/trust-bundle.pem, so a root can rotate with overlap), the join-token secret
// (<ca-dir>/token.key, 0600), and the control plane's own serving certificate.
#ifndef OUTRIGGER_CONTROLPLANE_IDENTITY_MESH_IDENTITY_H_
#define OUTRIGGER_CONTROLPLANE_IDENTITY_MESH_IDENTITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "certs/authority.h"
#include "certs/key.h"
#include "xds/grpc_tls.h"

namespace outrigger::controlplane {

struct IdentityOptions {
  std::string ca_dir;        // required: state lives here
  std::string ca_cert_file;  // optional, with ca_key_file: the user's CA
  std::string ca_key_file;
  std::string trust_domain = "cluster.local";
  absl::Duration cert_ttl = absl::Hours(24);
};

// Reads <dir>/token.key, creating it (32 random bytes, mode 0600) when missing. Shared with
// `outrigger token create`.
absl::StatusOr<std::string> LoadOrCreateTokenSecret(const std::string& dir);

class MeshIdentity {
 public:
  static absl::StatusOr<std::unique_ptr<MeshIdentity>> Open(const IdentityOptions& options,
                                                            absl::Time now);

  const certs::CertificateAuthority& ca() const { return *ca_; }
  const std::string& bundle_pem() const { return bundle_pem_; }
  const std::string& token_secret() const { return token_secret_; }
  const std::string& trust_domain() const { return options_.trust_domain; }
  absl::Duration cert_ttl() const { return options_.cert_ttl; }
  // The certificate the control plane serves (its SPIFFE ID: xds::ControlPlaneSpiffeId).
  const xds::GrpcIdentity& server_identity() const { return server_identity_; }
  absl::Time server_not_after() const { return server_not_after_; }

 private:
  MeshIdentity() = default;
  IdentityOptions options_;
  std::unique_ptr<certs::CertificateAuthority> ca_;
  std::string bundle_pem_;
  std::string token_secret_;
  xds::GrpcIdentity server_identity_;
  absl::Time server_not_after_;
};

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_IDENTITY_MESH_IDENTITY_H_
