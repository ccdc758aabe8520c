// Internal to certs/: the OpenSSL plumbing the key, certificate, CA and TLS code share (owning
// pointers, memory BIOs, URI SANs, the mesh's subject names). Not part of the library's API:
// nothing outside certs/ includes it.
#ifndef OUTRIGGER_CERTS_OPENSSL_UTIL_H_
#define OUTRIGGER_CERTS_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certs/spiffe_id.h"

namespace outrigger::certs::internal {

// unique_ptr deleter calling OpenSSL's free function F.
template <auto F>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    F(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;

// A read-only BIO over `data` (which must outlive it); null if `data` is too large for OpenSSL.
BioPtr MemBio(absl::string_view data);
// A fresh writable memory BIO and, after writing, what it holds.
BioPtr NewMemBio();
std::string BioContents(BIO* bio);

// `what`, then ": " and OpenSSL's queued errors when there are any; clears the queue.
absl::Status SslError(absl::StatusCode code, absl::string_view what);
// `status` with "field: " in front of its message (OK passes through).
absl::Status Prefixed(absl::string_view field, const absl::Status& status);

// A PEM passphrase callback that refuses: encrypted PEM fails instead of prompting on a tty.
int NoPassphrase(char* buf, int size, int rwflag, void* userdata);

// Whether `key` is an EC key on P-256 (the only kind the mesh issues or accepts).
bool IsP256(const EVP_PKEY* key);

// Every URI in `names` (null: none), in order.
std::vector<std::string> UriNames(const GENERAL_NAMES* names);
// The URIs of the subjectAltName extension of `cert`.
std::vector<std::string> CertificateUris(const X509* cert);
// The SPIFFE ID among `uris`: error unless exactly one is a spiffe:// URI and it parses.
absl::StatusOr<SpiffeId> OneSpiffeId(const std::vector<std::string>& uris);

// A non-critical subjectAltName extension holding the single URI `uri`.
absl::StatusOr<X509ExtensionPtr> UriSanExtension(absl::string_view uri);
// "O=outrigger, CN=<cn>". The CN is left out when longer than X.509's 64-character limit (long
// SPIFFE IDs): the identity lives in the URI SAN, the CN is only for people reading the cert.
absl::StatusOr<X509NamePtr> MeshName(absl::string_view cn);

// Sets notBefore/notAfter of `cert`.
absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after);
// Gives `cert` a random positive 128-bit serial (RFC 5280 allows up to 20 octets).
absl::Status SetRandomSerial(X509* cert);
// Adds the extension `nid` from its config-string form (e.g. "critical,CA:TRUE"), in `ctx`.
absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value);

}  // namespace outrigger::certs::internal

#endif  // OUTRIGGER_CERTS_OPENSSL_UTIL_H_
