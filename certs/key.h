// Private keys: ECDSA P-256 through OpenSSL 3. A sidecar makes its own key and it never leaves
// the process (only the CA's key is ever written out, to a 0600 file). Move-only.
#ifndef OUTRIGGER_CERTS_KEY_H_
#define OUTRIGGER_CERTS_KEY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace outrigger::certs {

class PrivateKey {
 public:
  static absl::StatusOr<PrivateKey> GenerateP256();
  // PKCS#8 PEM (unencrypted). Errors say what was wrong ("not a PEM private key", "not P-256").
  static absl::StatusOr<PrivateKey> FromPem(absl::string_view pem);

  // PKCS#8 PEM. Only for the CA's own key, written to a 0600 file; never logged.
  std::string ToPem() const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* k) const;
  };
  explicit PrivateKey(EVP_PKEY* k) : key_(k) {}
  std::unique_ptr<EVP_PKEY, Free> key_;
};

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_KEY_H_
