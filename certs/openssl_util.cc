// See openssl_util.h. Also defines OpenSslError() (declared in tls_context.h, where callers of
// the TLS API find it), since every file of the library reports OpenSSL's errors through it.
#include "certs/openssl_util.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "certs/tls_context.h"

namespace outrigger::certs {

std::string OpenSslError() {
  // Only library/reason strings and OpenSSL's own annotations are printed: none of them carry
  // the bytes being parsed, so key material cannot leak through here.
  std::vector<std::string> parts;
  const char* data = nullptr;
  int flags = 0;
  unsigned long e;
  while ((e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    std::string part = reason != nullptr ? std::string(reason) : absl::StrCat("error ", e);
    if (lib != nullptr) part = absl::StrCat(lib, ": ", part);
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      absl::StrAppend(&part, " (", data, ")");
    }
    // The same failure is often queued once per layer it passed through.
    if (parts.empty() || parts.back() != part) parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, "; ");
}

namespace internal {

BioPtr MemBio(absl::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

BioPtr NewMemBio() { return BioPtr(BIO_new(BIO_s_mem())); }

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return "";
  return std::string(data, static_cast<size_t>(len));
}

absl::Status SslError(absl::StatusCode code, absl::string_view what) {
  std::string detail = OpenSslError();
  if (detail.empty()) return absl::Status(code, what);
  return absl::Status(code, absl::StrCat(what, ": ", detail));
}

absl::Status Prefixed(absl::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

int NoPassphrase(char* buf, int size, int rwflag, void* userdata) { return 0; }

bool IsP256(const EVP_PKEY* key) {
  if (key == nullptr || !EVP_PKEY_is_a(key, "EC")) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
      1) {
    ERR_clear_error();
    return false;
  }
  return std::strcmp(group, SN_X9_62_prime256v1) == 0;
}

std::vector<std::string> UriNames(const GENERAL_NAMES* names) {
  std::vector<std::string> uris;
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  return uris;
}

std::vector<std::string> CertificateUris(const X509* cert) {
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  // A malformed extension leaves errors queued; it simply counts as no URIs.
  if (names == nullptr) ERR_clear_error();
  return UriNames(names.get());
}

absl::StatusOr<SpiffeId> OneSpiffeId(const std::vector<std::string>& uris) {
  const std::string* found = nullptr;
  int count = 0;
  for (const std::string& uri : uris) {
    if (!absl::StartsWithIgnoreCase(uri, "spiffe://")) continue;
    ++count;
    found = &uri;
  }
  if (count == 0) return absl::NotFoundError("no spiffe:// URI SAN");
  if (count > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(count, " spiffe:// URI SANs (a workload has exactly one identity)"));
  }
  return ParseSpiffeId(*found);
}

absl::StatusOr<X509ExtensionPtr> UriSanExtension(absl::string_view uri) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* value = ASN1_IA5STRING_new();
  if (names == nullptr || name == nullptr || value == nullptr ||
      ASN1_STRING_set(value, uri.data(), static_cast<int>(uri.size())) != 1) {
    GENERAL_NAME_free(name);
    ASN1_IA5STRING_free(value);
    return SslError(absl::StatusCode::kInternal, "building the URI SAN");
  }
  GENERAL_NAME_set0_value(name, GEN_URI, value);
  if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
    GENERAL_NAME_free(name);
    return SslError(absl::StatusCode::kInternal, "building the URI SAN");
  }
  X509ExtensionPtr ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
  if (ext == nullptr) return SslError(absl::StatusCode::kInternal, "encoding the URI SAN");
  return ext;
}

absl::StatusOr<X509NamePtr> MeshName(absl::string_view cn) {
  constexpr size_t kMaxCommonName = 64;  // ub-common-name, RFC 5280
  X509NamePtr name(X509_NAME_new());
  auto add = [&](const char* field, absl::string_view value) {
    return X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (name == nullptr || !add("O", "outrigger") ||
      (cn.size() <= kMaxCommonName && !cn.empty() && !add("CN", cn))) {
    return SslError(absl::StatusCode::kInternal, "building the subject name");
  }
  return name;
}

absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after) {
  if (ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after)) == nullptr) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("validity ", absl::FormatTime(not_before), " to ",
                                 absl::FormatTime(not_after), " cannot be encoded"));
  }
  return absl::OkStatus();
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return SslError(absl::StatusCode::kInternal, "generating a serial number");
  }
  bytes[0] |= 0x01;  // never zero: RFC 5280 wants a positive serial (127 random bits remain)
  std::unique_ptr<BIGNUM, Deleter<BN_free>> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return SslError(absl::StatusCode::kInternal, "setting the serial number");
  }
  return absl::OkStatus();
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return SslError(absl::StatusCode::kInternal,
                    absl::StrCat("adding ", OBJ_nid2sn(nid), " '", value, "'"));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace outrigger::certs
