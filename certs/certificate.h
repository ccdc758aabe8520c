// X.509 certificates as the mesh uses them: parse/print PEM, validity, the SPIFFE ID in the URI
// SAN, and certificate signing requests (CSRs) a sidecar sends to the mesh CA.
#ifndef OUTRIGGER_CERTS_CERTIFICATE_H_
#define OUTRIGGER_CERTS_CERTIFICATE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certs/key.h"
#include "certs/spiffe_id.h"

typedef struct x509_st X509;

namespace outrigger::certs {

class Certificate {
 public:
  static absl::StatusOr<Certificate> FromPem(absl::string_view pem);
  // Every certificate of a PEM bundle, in order (a chain: leaf first). Empty input is an error.
  static absl::StatusOr<std::vector<Certificate>> ChainFromPem(absl::string_view pem);

  std::string ToPem() const;
  absl::Time not_before() const;
  absl::Time not_after() const;
  bool is_ca() const;
  std::string subject() const;  // one line, e.g. "O=outrigger, CN=cluster.local root"
  // The SPIFFE ID in the URI SAN, if there is exactly one spiffe:// URI.
  std::optional<SpiffeId> spiffe_id() const;
  // SHA-256 of the DER encoding, hex: names a certificate in logs and status.
  std::string fingerprint() const;
  X509* get() const { return cert_.get(); }

  Certificate(const Certificate& other);
  Certificate& operator=(const Certificate& other);
  Certificate(Certificate&&) = default;
  Certificate& operator=(Certificate&&) = default;

 private:
  struct Free {
    void operator()(X509* c) const;
  };
  explicit Certificate(X509* c) : cert_(c) {}
  friend class CertificateAuthority;
  std::unique_ptr<X509, Free> cert_;
};

// A PEM CSR for `id`, signed with `key` (ECDSA SHA-256); the SPIFFE ID goes in the URI SAN.
absl::StatusOr<std::string> CreateCsr(const PrivateKey& key, const SpiffeId& id);

// What the CA reads from a CSR, after checking its self-signature.
struct CsrInfo {
  std::optional<SpiffeId> spiffe_id;  // the one spiffe:// URI SAN, if any
  int uri_count = 0;                  // every URI SAN (the CA wants exactly one)
};
absl::StatusOr<CsrInfo> ParseCsr(absl::string_view pem);

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_CERTIFICATE_H_
