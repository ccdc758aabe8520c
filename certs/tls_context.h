// OpenSSL TLS contexts for mesh traffic: TLS 1.3 only, P-256/X25519, ALPN, the sidecar's own
// certificate chain and key, and a trust bundle of one or more roots (several during a root
// rotation). The peer's SPIFFE ID is read from its verified certificate. Contexts are immutable
// once built: rotation builds a new one and new connections use it.
#ifndef OUTRIGGER_CERTS_TLS_CONTEXT_H_
#define OUTRIGGER_CERTS_TLS_CONTEXT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/spiffe_id.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace outrigger::certs {

// What a TLS context presents and trusts.
struct TlsCredentials {
  std::string chain_pem;   // leaf first
  const PrivateKey* key = nullptr;
  std::string bundle_pem;  // trusted roots, one or more
};

struct TlsOptions {
  bool server = false;
  // Server: require and verify a client certificate (mTLS). Client: always verifies the server.
  bool require_peer_certificate = true;
  std::vector<std::string> alpn;  // e.g. {"h2", "http/1.1"}; server picks the first it shares
};

// An SSL_CTX shared by connections; freed with the last reference.
using SslContextPtr = std::shared_ptr<SSL_CTX>;

// Errors name the part that was wrong ("chain_pem: ...", "key does not match the certificate").
absl::StatusOr<SslContextPtr> MakeTlsContext(const TlsCredentials& credentials,
                                             const TlsOptions& options);

// The SPIFFE ID of the verified peer of `ssl` (after the handshake), or an error saying why
// there is none (no certificate, not verified, no spiffe:// URI SAN).
absl::StatusOr<SpiffeId> PeerSpiffeId(SSL* ssl);

// OpenSSL's error queue as one line (and cleared): for error messages.
std::string OpenSslError();

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_TLS_CONTEXT_H_
