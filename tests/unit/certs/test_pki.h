// Test-only PKI helpers in raw OpenSSL, for what the certs library deliberately cannot do
// (CSRs with several URIs, intermediate CAs) and for checking its output independently of it
// (chain verification with an X509_STORE).
#ifndef OUTRIGGER_TESTS_UNIT_CERTS_TEST_PKI_H_
#define OUTRIGGER_TESTS_UNIT_CERTS_TEST_PKI_H_

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certs/authority.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/spiffe_id.h"

namespace outrigger::certs::testing {

// The value of `s`, failing the test (with its message) when it is an error.
template <typename T>
T Unwrap(absl::StatusOr<T> s) {
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return *std::move(s);
}

inline SpiffeId Id(absl::string_view ns, absl::string_view sa,
                   absl::string_view td = "cluster.local") {
  return SpiffeId{std::string(td), std::string(ns), std::string(sa)};
}

inline std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// A CSR signed by `key` (any type) carrying every URI of `uris` in its subjectAltName.
inline std::string CsrWithUris(EVP_PKEY* key, const std::vector<std::string>& uris) {
  X509_REQ* req = X509_REQ_new();
  GENERAL_NAMES* names = GENERAL_NAMES_new();
  for (const std::string& uri : uris) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    ASN1_STRING_set(value, uri.data(), static_cast<int>(uri.size()));
    GENERAL_NAME_set0_value(name, GEN_URI, value);
    sk_GENERAL_NAME_push(names, name);
  }
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION* san = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
  sk_X509_EXTENSION_push(exts, san);
  REQUIRE(X509_REQ_set_pubkey(req, key) == 1);
  REQUIRE(X509_REQ_add_extensions(req, exts) == 1);
  REQUIRE(X509_REQ_sign(req, key, EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req);
  std::string pem = BioString(bio);
  BIO_free(bio);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  GENERAL_NAMES_free(names);
  X509_REQ_free(req);
  return pem;
}
inline std::string CsrWithUris(const PrivateKey& key, const std::vector<std::string>& uris) {
  return CsrWithUris(key.get(), uris);
}

// A key and a CSR for `id`, signed by `ca`: a leaf chain PEM (valid from now - 1 min).
struct Leaf {
  PrivateKey key;
  std::string chain_pem;
};
inline Leaf IssueLeaf(const CertificateAuthority& ca, const SpiffeId& id,
                      absl::Duration ttl = absl::Hours(1), absl::Time now = absl::Now()) {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  std::string csr = Unwrap(CreateCsr(key, id));
  std::string chain = Unwrap(ca.Sign(csr, id, ttl, now));
  return Leaf{std::move(key), std::move(chain)};
}

// The X509 verification result of `chain_pem` (leaf first, then untrusted intermediates)
// against the roots in `roots_pem`, at `at`, for both TLS purposes; `depth` gets the length of
// the verified chain, root included.
inline int VerifyChain(absl::string_view chain_pem, absl::string_view roots_pem, absl::Time at,
                       int* depth = nullptr) {
  std::vector<Certificate> chain = Unwrap(Certificate::ChainFromPem(chain_pem));
  std::vector<Certificate> roots = Unwrap(Certificate::ChainFromPem(roots_pem));
  int result = X509_V_OK;
  for (int purpose : {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT}) {
    X509_STORE* store = X509_STORE_new();
    for (const Certificate& root : roots) X509_STORE_add_cert(store, root.get());
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, chain[0].get(), untrusted);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    X509_STORE_CTX_set_time(ctx, 0, absl::ToTimeT(at));
    if (X509_verify_cert(ctx) != 1) {
      result = X509_STORE_CTX_get_error(ctx);
    } else if (depth != nullptr) {
      *depth = sk_X509_num(X509_STORE_CTX_get0_chain(ctx));
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    if (result != X509_V_OK) break;
  }
  ERR_clear_error();
  return result;
}

// An intermediate CA under `root`, named "O=outrigger, CN=<cn>": its certificate PEM and key PEM
// (what an operator would hand to CertificateAuthority::FromPem, with the root after it).
struct IntermediatePem {
  std::string cert_pem;
  std::string key_pem;
};
inline IntermediatePem SignIntermediate(const CertificateAuthority& root, absl::string_view cn,
                                        absl::Duration validity, absl::Time now,
                                        const char* key_usage = "critical,keyCertSign,cRLSign",
                                        const char* basic_constraints = "critical,CA:TRUE") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  X509* issuer = root.chain().front().get();
  X509* cert = X509_new();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("outrigger"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(std::string(cn).c_str()), -1,
                             -1, 0);
  X509_set_subject_name(cert, name);
  X509_NAME_free(name);
  X509_set_issuer_name(cert, X509_get_subject_name(issuer));
  ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(now - absl::Minutes(1)));
  ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(now + validity));
  X509_set_pubkey(cert, key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, basic_constraints}, std::pair{NID_key_usage, key_usage},
        std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_authority_key_identifier, "keyid"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(cert, root.key().get(), EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  IntermediatePem out{BioString(bio), key.ToPem()};
  BIO_free(bio);
  X509_free(cert);
  return out;
}

}  // namespace outrigger::certs::testing

#endif  // OUTRIGGER_TESTS_UNIT_CERTS_TEST_PKI_H_
