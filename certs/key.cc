// See key.h. Keys come from EVP_PKEY_Q_keygen and OpenSSL's PEM decoders; errors never echo the
// PEM they were given, since it is private key material.
#include "certs/key.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "certs/openssl_util.h"

namespace outrigger::certs {

using internal::SslError;

void PrivateKey::Free::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

absl::StatusOr<PrivateKey> PrivateKey::GenerateP256() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) return SslError(absl::StatusCode::kInternal, "generating a P-256 key");
  return PrivateKey(key);
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(absl::string_view pem) {
  // Said up front because OpenSSL's own error for this ("bad decrypt", or nothing) is obscure.
  if (absl::StrContains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError("encrypted private keys are not supported");
  }
  internal::BioPtr bio = internal::MemBio(pem);
  if (bio == nullptr) return absl::InvalidArgumentError("not a PEM private key (too large)");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, internal::NoPassphrase, nullptr);
  if (key == nullptr) return SslError(absl::StatusCode::kInvalidArgument, "not a PEM private key");
  PrivateKey result(key);
  if (!internal::IsP256(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not P-256: the key is ",
                     EVP_PKEY_get0_type_name(key) != nullptr ? EVP_PKEY_get0_type_name(key)
                                                             : "of an unknown type",
                     " (", EVP_PKEY_get_bits(key), " bits); the mesh uses ECDSA P-256 keys"));
  }
  return result;
}

std::string PrivateKey::ToPem() const {
  internal::BioPtr bio = internal::NewMemBio();
  if (bio == nullptr || key_ == nullptr ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return "";
  }
  return internal::BioContents(bio.get());
}

}  // namespace outrigger::certs
