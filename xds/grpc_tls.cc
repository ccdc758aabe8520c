// See grpc_tls.h. Uses gRPC's TLS credentials API (grpcpp/security/tls_*): static certificate
// providers (credentials are rebuilt when a certificate rotates) and an external verifier that
// checks the server's SPIFFE ID in place of a host name.
#include "xds/grpc_tls.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

namespace outrigger::xds {

namespace {

using grpc::experimental::ExternalCertificateVerifier;
using grpc::experimental::TlsCustomVerificationCheckRequest;

// The chain was verified against the bundle already; this checks who the server is.
class SpiffeIdVerifier : public ExternalCertificateVerifier {
 public:
  explicit SpiffeIdVerifier(std::string expected) : expected_(std::move(expected)) {}

  bool Verify(TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    for (const auto& uri : request->uri_names()) {
      if (Matches(std::string(uri.data(), uri.size()))) {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                "the control plane's certificate is not for " + expected_);
    return true;
  }
  void Cancel(TlsCustomVerificationCheckRequest*) override {}

 private:
  // "spiffe://*/rest" matches that path in any trust domain.
  bool Matches(const std::string& uri) const {
    static constexpr char kAny[] = "spiffe://*/";
    if (expected_.rfind(kAny, 0) != 0) return uri == expected_;
    const std::string path = expected_.substr(sizeof(kAny) - 2);  // "/ns/..."
    return uri.rfind("spiffe://", 0) == 0 && uri.size() > path.size() &&
           uri.compare(uri.size() - path.size(), path.size(), path) == 0 &&
           uri.find('/', 9) == uri.size() - path.size();
  }

  std::string expected_;
};

}  // namespace

std::string ControlPlaneSpiffeId(const std::string& trust_domain) {
  return "spiffe://" + trust_domain + "/ns/outrigger-system/sa/outrigger-control";
}

std::shared_ptr<grpc::ChannelCredentials> MeshChannelCredentials(
    const std::string& bundle_pem, const std::string& server_spiffe_id,
    const std::optional<GrpcIdentity>& identity) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  if (identity) pairs.push_back({identity->key_pem, identity->chain_pem});
  auto provider =
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(bundle_pem, pairs);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (identity) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      ExternalCertificateVerifier::Create<SpiffeIdVerifier>(server_spiffe_id));
  return grpc::experimental::TlsCredentials(options);
}

std::shared_ptr<grpc::ServerCredentials> MeshServerCredentials(const std::string& bundle_pem,
                                                               const GrpcIdentity& identity) {
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      bundle_pem, std::vector<grpc::experimental::IdentityKeyCertPair>{
                      {identity.key_pem, identity.chain_pem}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::optional<std::string> PeerSpiffeId(const grpc::AuthContext& auth) {
  for (const auto& v : auth.FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME)) {
    return std::string(v.data(), v.size());
  }
  return std::nullopt;
}

}  // namespace outrigger::xds
