// The mesh certificate authority: a root (or an intermediate under the user's own root) that
// signs sidecars' CSRs with short-lived leaf certificates carrying their SPIFFE ID. The control
// plane owns one; nothing else signs.
#ifndef OUTRIGGER_CERTS_AUTHORITY_H_
#define OUTRIGGER_CERTS_AUTHORITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/spiffe_id.h"

namespace outrigger::certs {

class CertificateAuthority {
 public:
  // A new self-signed root (P-256, CA:TRUE, keyCertSign|cRLSign), valid from now - 1 min for
  // `validity`, its URI SAN spiffe://<trust_domain>.
  static absl::StatusOr<CertificateAuthority> CreateRoot(absl::string_view trust_domain,
                                                         absl::Duration validity, absl::Time now);
  // A CA the user provides: `chain_pem` is the signing certificate first (a root, or an
  // intermediate followed by its parents), `key_pem` its key. Checks that the key matches the
  // certificate and that it may sign certificates.
  static absl::StatusOr<CertificateAuthority> FromPem(absl::string_view chain_pem,
                                                      absl::string_view key_pem);

  // Signs `csr_pem` if its one SPIFFE ID is `expected` (a join token or a certificate only ever
  // yields its own identity). The leaf: CA:FALSE, digitalSignature, serverAuth+clientAuth, the
  // URI SAN, a random 128-bit serial, valid from now - 1 min to now + ttl (never past the CA's
  // own notAfter). Returns the chain PEM: the leaf, then the CA's chain up to (not including) a
  // self-signed root.
  absl::StatusOr<std::string> Sign(absl::string_view csr_pem, const SpiffeId& expected,
                                   absl::Duration ttl, absl::Time now) const;

  // The signing certificate and its parents, as given (first = signer).
  const std::vector<Certificate>& chain() const { return chain_; }
  // The root(s) that clients should trust: the last certificate of the chain.
  std::string RootPem() const;
  const PrivateKey& key() const { return key_; }

 private:
  CertificateAuthority(std::vector<Certificate> chain, PrivateKey key)
      : chain_(std::move(chain)), key_(std::move(key)) {}
  std::vector<Certificate> chain_;
  PrivateKey key_;
};

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_AUTHORITY_H_
