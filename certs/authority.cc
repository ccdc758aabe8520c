// See authority.h. Certificates are built with raw X509 calls and X509V3_EXT_conf_nid for the
// standard extensions; the URI SAN is built as GENERAL_NAMES so no part of a SPIFFE ID is ever
// interpreted as OpenSSL config syntax.
#include "certs/authority.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "certs/openssl_util.h"

namespace outrigger::certs {
namespace {

using internal::Prefixed;
using internal::SslError;

// Clock skew between the CA and the peers checking its certificates.
constexpr absl::Duration kBackdate = absl::Minutes(1);

absl::Status SignCertificate(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    return SslError(absl::StatusCode::kInternal, "signing the certificate");
  }
  return absl::OkStatus();
}

absl::Status AddUriSan(X509* cert, absl::string_view uri) {
  absl::StatusOr<internal::X509ExtensionPtr> san = internal::UriSanExtension(uri);
  if (!san.ok()) return san.status();
  if (X509_add_ext(cert, san->get(), -1) != 1) {
    return SslError(absl::StatusCode::kInternal, "adding the URI SAN");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CertificateAuthority> CertificateAuthority::CreateRoot(
    absl::string_view trust_domain, absl::Duration validity, absl::Time now) {
  // ParseSpiffeId holds the trust-domain rules; any valid path lets it check just the domain.
  if (!ParseSpiffeId(absl::StrCat("spiffe://", trust_domain, "/ns/x/sa/x")).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust_domain: '", absl::CHexEscape(trust_domain),
                     "' is not a valid trust domain (lowercase letters, digits, . - _)"));
  }
  if (validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity: must be positive, got ", absl::FormatDuration(validity)));
  }
  absl::StatusOr<PrivateKey> key = PrivateKey::GenerateP256();
  if (!key.ok()) return key.status();
  absl::StatusOr<internal::X509NamePtr> name =
      internal::MeshName(absl::StrCat(trust_domain, " root"));
  if (!name.ok()) return name.status();

  internal::X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), name->get()) != 1 ||
      X509_set_issuer_name(cert.get(), name->get()) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1) {
    return SslError(absl::StatusCode::kInternal, "building the root certificate");
  }
  if (absl::Status s = internal::SetRandomSerial(cert.get()); !s.ok()) return s;
  if (absl::Status s = internal::SetValidity(cert.get(), now - kBackdate, now + validity);
      !s.ok()) {
    return Prefixed("validity", s);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = internal::AddConfExtension(cert.get(), &ctx, nid, value); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = AddUriSan(cert.get(), absl::StrCat("spiffe://", trust_domain)); !s.ok()) {
    return s;
  }
  if (absl::Status s = SignCertificate(cert.get(), key->get()); !s.ok()) return s;
  std::vector<Certificate> chain;
  chain.push_back(Certificate(cert.release()));
  return CertificateAuthority(std::move(chain), *std::move(key));
}

absl::StatusOr<CertificateAuthority> CertificateAuthority::FromPem(absl::string_view chain_pem,
                                                                   absl::string_view key_pem) {
  absl::StatusOr<std::vector<Certificate>> chain = Certificate::ChainFromPem(chain_pem);
  if (!chain.ok()) return Prefixed("chain_pem", chain.status());
  absl::StatusOr<PrivateKey> key = PrivateKey::FromPem(key_pem);
  if (!key.ok()) return Prefixed("key_pem", key.status());
  X509* signer = chain->front().get();
  if (X509_check_private_key(signer, key->get()) != 1) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("key_pem: the key does not match certificate 1 of chain_pem (",
                                 chain->front().subject(), ")"));
  }
  if (!chain->front().is_ca()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chain_pem: certificate 1 (", chain->front().subject(),
                     ") is not a CA certificate (basicConstraints CA:TRUE is missing)"));
  }
  if ((X509_get_extension_flags(signer) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(signer) & KU_KEY_CERT_SIGN) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("chain_pem: certificate 1 (", chain->front().subject(),
                     ") may not sign certificates (its keyUsage lacks keyCertSign)"));
  }
  // The chain is handed out with every leaf, so a wrong order would break every peer's
  // verification; catch it here, where the file is named.
  for (size_t i = 0; i + 1 < chain->size(); ++i) {
    X509* child = (*chain)[i].get();
    X509* parent = (*chain)[i + 1].get();
    EVP_PKEY* parent_key = X509_get0_pubkey(parent);
    if (X509_check_issued(parent, child) != X509_V_OK || parent_key == nullptr ||
        X509_verify(child, parent_key) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("chain_pem: certificate ", i + 2, " (", (*chain)[i + 1].subject(),
                       ") did not issue certificate ", i + 1, " (", (*chain)[i].subject(),
                       "); list the signing certificate first, then each issuer in turn"));
    }
  }
  return CertificateAuthority(*std::move(chain), *std::move(key));
}

absl::StatusOr<std::string> CertificateAuthority::Sign(absl::string_view csr_pem,
                                                       const SpiffeId& expected, absl::Duration ttl,
                                                       absl::Time now) const {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl: must be positive, got ", absl::FormatDuration(ttl)));
  }
  absl::StatusOr<CsrInfo> info = ParseCsr(csr_pem);
  if (!info.ok()) return Prefixed("csr", info.status());
  if (info->uri_count != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "csr: has ", info->uri_count, " URI SANs; it must have exactly one, its SPIFFE ID"));
  }
  if (!info->spiffe_id.has_value()) {
    return absl::InvalidArgumentError(
        "csr: its URI SAN is not a SPIFFE ID of the form spiffe://<td>/ns/<ns>/sa/<sa>");
  }
  if (*info->spiffe_id != expected) {
    return absl::PermissionDeniedError(
        absl::StrCat("the CSR asks for ", info->spiffe_id->ToString(),
                     " but this request may only get ", expected.ToString()));
  }
  // ParseCsr checked the request; read it again for the public key it certifies.
  internal::BioPtr bio = internal::MemBio(csr_pem);
  internal::X509ReqPtr req(
      bio == nullptr ? nullptr
                     : PEM_read_bio_X509_REQ(bio.get(), nullptr, internal::NoPassphrase, nullptr));
  EVP_PKEY* pub = req == nullptr ? nullptr : X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr) return SslError(absl::StatusCode::kInvalidArgument, "csr: unreadable key");
  if (!internal::IsP256(pub)) {
    return absl::InvalidArgumentError("csr: the key is not ECDSA P-256");
  }

  const Certificate& signer = chain_.front();
  const absl::Time ca_not_after = signer.not_after();
  if (ca_not_after <= now) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the CA certificate (", signer.subject(), ") expired at ", absl::FormatTime(ca_not_after)));
  }
  const std::string uri = expected.ToString();
  absl::StatusOr<internal::X509NamePtr> name = internal::MeshName(uri);
  if (!name.ok()) return name.status();
  internal::X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), name->get()) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(signer.get())) != 1 ||
      X509_set_pubkey(cert.get(), pub) != 1) {
    return SslError(absl::StatusCode::kInternal, "building the certificate");
  }
  if (absl::Status s = internal::SetRandomSerial(cert.get()); !s.ok()) return s;
  if (absl::Status s =
          internal::SetValidity(cert.get(), now - kBackdate, std::min(now + ttl, ca_not_after));
      !s.ok()) {
    return Prefixed("ttl", s);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, signer.get(), cert.get(), nullptr, nullptr, 0);
  // keyEncipherment is for RSA key transport; ECDSA keys only ever sign.
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "serverAuth,clientAuth"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid"}}) {
    if (absl::Status s = internal::AddConfExtension(cert.get(), &ctx, nid, value); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = AddUriSan(cert.get(), uri); !s.ok()) return s;
  if (absl::Status s = SignCertificate(cert.get(), key_.get()); !s.ok()) return s;

  std::string out = Certificate(cert.release()).ToPem();
  for (const Certificate& c : chain_) {
    // Peers hold the root already; sending it would only cost bytes on every handshake.
    if (X509_self_signed(c.get(), 0) == 1) break;
    absl::StrAppend(&out, c.ToPem());
  }
  ERR_clear_error();
  return out;
}

std::string CertificateAuthority::RootPem() const { return chain_.back().ToPem(); }

}  // namespace outrigger::certs
