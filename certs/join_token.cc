// See join_token.h.
#include "certs/join_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace outrigger::certs {

namespace {

constexpr absl::string_view kPrefix = "ort1.";

std::string Mac(absl::string_view secret, absl::string_view payload) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

struct Parts {
  std::string payload;  // decoded
  std::string mac;      // decoded
  std::string encoded_payload;
};

absl::StatusOr<Parts> Split(absl::string_view token) {
  if (!absl::StartsWith(token, kPrefix)) {
    return absl::InvalidArgumentError("join token: not an Outrigger join token (no 'ort1.')");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token.substr(kPrefix.size()), '.');
  Parts out;
  if (parts.size() != 2 || !absl::WebSafeBase64Unescape(parts[0], &out.payload) ||
      !absl::WebSafeBase64Unescape(parts[1], &out.mac)) {
    return absl::InvalidArgumentError("join token: malformed");
  }
  out.encoded_payload = std::string(parts[0]);
  return out;
}

absl::StatusOr<JoinTokenClaims> Claims(absl::string_view payload) {
  std::vector<std::string> f = absl::StrSplit(payload, '/');
  int64_t exp = 0;
  if (f.size() != 4 || !absl::SimpleAtoi(f[3], &exp)) {
    return absl::InvalidArgumentError("join token: malformed claims");
  }
  JoinTokenClaims c;
  c.id = {f[0], f[1], f[2]};
  auto parsed = ParseSpiffeId(c.id.ToString());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("join token: bad identity: ", parsed.status().message()));
  }
  c.expires = absl::FromUnixSeconds(exp);
  return c;
}

}  // namespace

absl::StatusOr<std::string> MintJoinToken(absl::string_view secret, const SpiffeId& id,
                                          absl::Time expires) {
  if (secret.size() < 32) return absl::InvalidArgumentError("join token secret too short");
  if (auto parsed = ParseSpiffeId(id.ToString()); !parsed.ok()) return parsed.status();
  const std::string payload = absl::StrCat(id.trust_domain, "/", id.ns, "/", id.service_account,
                                           "/", absl::ToUnixSeconds(expires));
  std::string encoded = absl::WebSafeBase64Escape(payload);
  return absl::StrCat(kPrefix, encoded, ".", absl::WebSafeBase64Escape(Mac(secret, encoded)));
}

absl::StatusOr<JoinTokenClaims> ReadJoinToken(absl::string_view token) {
  auto parts = Split(token);
  if (!parts.ok()) return parts.status();
  return Claims(parts->payload);
}

absl::StatusOr<JoinTokenClaims> VerifyJoinToken(absl::string_view secret, absl::string_view token,
                                                absl::Time now) {
  auto parts = Split(token);
  if (!parts.ok()) return parts.status();
  const std::string want = Mac(secret, parts->encoded_payload);
  if (want.size() != parts->mac.size() ||
      CRYPTO_memcmp(want.data(), parts->mac.data(), want.size()) != 0) {
    return absl::PermissionDeniedError(
        "join token: signature does not verify (not issued by "
        "this control plane, or altered)");
  }
  auto claims = Claims(parts->payload);
  if (!claims.ok()) return claims.status();
  if (now >= claims->expires) {
    return absl::PermissionDeniedError(
        absl::StrCat("join token for ", claims->id.ToString(), " expired at ",
                     absl::FormatTime(absl::RFC3339_sec, claims->expires, absl::UTCTimeZone())));
  }
  return claims;
}

}  // namespace outrigger::certs
