// See certificate.h. PEM is read block by block (PEM_read_bio) rather than with
// PEM_read_bio_X509, which silently skips blocks of other types: a private key pasted into a
// certificate field is reported as such (without echoing it) instead of vanishing.
#include "certs/certificate.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "certs/openssl_util.h"

namespace outrigger::certs {
namespace {

using internal::SslError;

absl::Time Asn1TimeToAbsl(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return absl::InfinitePast();
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                           tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

void FreeExtensionList(STACK_OF(X509_EXTENSION) * exts) { sk_X509_EXTENSION_free(exts); }
void FreeExtensions(STACK_OF(X509_EXTENSION) * exts) {
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

// The PEM labels OpenSSL accepts for a certificate.
bool IsCertificateLabel(absl::string_view label) {
  return label == PEM_STRING_X509 || label == PEM_STRING_X509_OLD ||
         label == PEM_STRING_X509_TRUSTED;
}

}  // namespace

void Certificate::Free::operator()(X509* c) const { X509_free(c); }

Certificate::Certificate(const Certificate& other) : cert_(other.cert_.get()) {
  if (cert_ != nullptr) X509_up_ref(cert_.get());
}

Certificate& Certificate::operator=(const Certificate& other) {
  if (this != &other) {
    if (other.cert_ != nullptr) X509_up_ref(other.cert_.get());
    cert_.reset(other.cert_.get());
  }
  return *this;
}

absl::StatusOr<Certificate> Certificate::FromPem(absl::string_view pem) {
  // Takes the first certificate, so a chain PEM yields its leaf.
  absl::StatusOr<std::vector<Certificate>> chain = ChainFromPem(pem);
  if (!chain.ok()) return chain.status();
  return std::move(chain->front());
}

absl::StatusOr<std::vector<Certificate>> Certificate::ChainFromPem(absl::string_view pem) {
  internal::BioPtr bio = internal::MemBio(pem);
  if (bio == nullptr) return absl::InvalidArgumentError("PEM input too large");
  std::vector<Certificate> chain;
  for (int block = 1;; ++block) {
    char* label = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    ERR_set_mark();
    if (PEM_read_bio(bio.get(), &label, &header, &data, &len) != 1) {
      // "No start line" after at least one block is the normal end of the input.
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_pop_to_mark();
        if (chain.empty()) {
          return absl::InvalidArgumentError(
              "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
        }
        return chain;
      }
      ERR_clear_last_mark();
      return SslError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("PEM block ", block, " is malformed"));
    }
    ERR_clear_last_mark();
    const std::string label_str = label;
    const unsigned char* p = data;
    X509* cert = IsCertificateLabel(label_str) ? d2i_X509(nullptr, &p, len) : nullptr;
    const bool trailing = cert != nullptr && p != data + len;
    OPENSSL_free(label);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<size_t>(len));  // the block may be a private key
    if (!IsCertificateLabel(label_str)) {
      // Never the block itself, and not even its label when it is a key.
      if (absl::StrContains(label_str, "PRIVATE KEY")) {
        return absl::InvalidArgumentError(
            absl::StrCat("PEM block ", block, " is a private key, not a certificate"));
      }
      return absl::InvalidArgumentError(absl::StrCat("PEM block ", block, " is a '",
                                                     absl::CHexEscape(label_str.substr(0, 40)),
                                                     "', not a CERTIFICATE"));
    }
    if (cert == nullptr || trailing) {
      X509_free(cert);
      return SslError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("certificate ", chain.size() + 1, " is not valid DER X.509"));
    }
    chain.push_back(Certificate(cert));
  }
}

std::string Certificate::ToPem() const {
  internal::BioPtr bio = internal::NewMemBio();
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert_.get()) != 1) return "";
  return internal::BioContents(bio.get());
}

absl::Time Certificate::not_before() const { return Asn1TimeToAbsl(X509_get0_notBefore(get())); }

absl::Time Certificate::not_after() const { return Asn1TimeToAbsl(X509_get0_notAfter(get())); }

bool Certificate::is_ca() const { return (X509_get_extension_flags(get()) & EXFLAG_CA) != 0; }

std::string Certificate::subject() const {
  internal::BioPtr bio = internal::NewMemBio();
  // OpenSSL's one-line form without the spaces around '=', and UTF-8 left unescaped.
  const unsigned long flags =
      (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), X509_get_subject_name(get()), 0, flags) < 0) {
    return "";
  }
  return internal::BioContents(bio.get());
}

std::optional<SpiffeId> Certificate::spiffe_id() const {
  absl::StatusOr<SpiffeId> id = internal::OneSpiffeId(internal::CertificateUris(get()));
  if (!id.ok()) return std::nullopt;
  return *std::move(id);
}

std::string Certificate::fingerprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(get(), EVP_sha256(), md, &len) != 1) {
    ERR_clear_error();
    return "";
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
}

absl::StatusOr<std::string> CreateCsr(const PrivateKey& key, const SpiffeId& id) {
  if (key.get() == nullptr) return absl::InvalidArgumentError("no key to sign the CSR with");
  const std::string uri = id.ToString();
  internal::X509ReqPtr req(X509_REQ_new());
  if (req == nullptr) return SslError(absl::StatusCode::kInternal, "allocating a CSR");
  absl::StatusOr<internal::X509NamePtr> subject = internal::MeshName(uri);
  if (!subject.ok()) return subject.status();
  absl::StatusOr<internal::X509ExtensionPtr> san = internal::UriSanExtension(uri);
  if (!san.ok()) return san.status();
  // Holds the SAN without owning it (`san` does).
  std::unique_ptr<STACK_OF(X509_EXTENSION), internal::Deleter<FreeExtensionList>> exts(
      sk_X509_EXTENSION_new_null());
  if (exts == nullptr || sk_X509_EXTENSION_push(exts.get(), san->get()) <= 0 ||
      X509_REQ_set_version(req.get(), 0) != 1 ||  // the only version (v1, encoded 0)
      X509_REQ_set_subject_name(req.get(), subject->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return SslError(absl::StatusCode::kInternal, "building the CSR");
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return SslError(absl::StatusCode::kInternal, "signing the CSR");
  }
  internal::BioPtr bio = internal::NewMemBio();
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return SslError(absl::StatusCode::kInternal, "writing the CSR");
  }
  return internal::BioContents(bio.get());
}

absl::StatusOr<CsrInfo> ParseCsr(absl::string_view pem) {
  internal::BioPtr bio = internal::MemBio(pem);
  if (bio == nullptr) return absl::InvalidArgumentError("CSR too large");
  internal::X509ReqPtr req(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, internal::NoPassphrase, nullptr));
  if (req == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "not a PEM certificate request (expected -----BEGIN CERTIFICATE REQUEST-----)");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument, "the CSR's public key cannot be read");
  }
  // Proves the requester holds the key the certificate will be issued for.
  if (X509_REQ_verify(req.get(), pub) != 1) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "the CSR's signature does not verify with its own public key");
  }
  CsrInfo info;
  std::unique_ptr<STACK_OF(X509_EXTENSION), internal::Deleter<FreeExtensions>> exts(
      X509_REQ_get_extensions(req.get()));
  ERR_clear_error();  // no extensions at all is not an error
  int critical = 0;
  internal::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      exts == nullptr ? nullptr
                      : X509V3_get_d2i(exts.get(), NID_subject_alt_name, &critical, nullptr)));
  if (names == nullptr && critical == -2) {
    return absl::InvalidArgumentError("the CSR has more than one subjectAltName extension");
  }
  ERR_clear_error();
  const std::vector<std::string> uris = internal::UriNames(names.get());
  info.uri_count = static_cast<int>(uris.size());
  absl::StatusOr<SpiffeId> id = internal::OneSpiffeId(uris);
  if (id.ok()) info.spiffe_id = *std::move(id);
  return info;
}

}  // namespace outrigger::certs
