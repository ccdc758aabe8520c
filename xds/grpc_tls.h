// gRPC credentials for the control-plane connection, built on the mesh CA: the control plane
// serves TLS with a certificate the mesh CA issued to it and verifies (when offered) client
// certificates against the trust bundle; a proxy verifies the control plane's certificate
// against the bundle and its SPIFFE ID (not a host name), and presents its own certificate once
// it has one. Names the peer of a call by the SPIFFE ID of its verified certificate.
#ifndef OUTRIGGER_XDS_GRPC_TLS_H_
#define OUTRIGGER_XDS_GRPC_TLS_H_

#include <memory>
#include <optional>
#include <string>

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
class AuthContext;
}  // namespace grpc

namespace outrigger::xds {

// The control plane's own SPIFFE ID in `trust_domain` (what proxies check it against). "*" as
// the trust domain makes a pattern that matches it in any trust domain.
std::string ControlPlaneSpiffeId(const std::string& trust_domain);

struct GrpcIdentity {
  std::string key_pem;
  std::string chain_pem;
};

// Verifies the server's chain against `bundle_pem` and that its URI SAN is `server_spiffe_id`;
// presents `identity` when given.
std::shared_ptr<grpc::ChannelCredentials> MeshChannelCredentials(
    const std::string& bundle_pem, const std::string& server_spiffe_id,
    const std::optional<GrpcIdentity>& identity);

// Serves `identity`; asks clients for a certificate and verifies it against `bundle_pem` when one
// is offered (a first contact has none and authenticates with a join token instead).
std::shared_ptr<grpc::ServerCredentials> MeshServerCredentials(const std::string& bundle_pem,
                                                               const GrpcIdentity& identity);

// The SPIFFE ID of a call's verified client certificate, if it presented one.
std::optional<std::string> PeerSpiffeId(const grpc::AuthContext& auth);

}  // namespace outrigger::xds

#endif  // OUTRIGGER_XDS_GRPC_TLS_H_
