// Join tokens: how a sidecar's first contact with the control plane is authenticated. A token
// names one identity (trust domain, namespace, service) and an expiry, and carries an HMAC-SHA256
// over them keyed with a secret only the control plane (and `outrigger token create`, run where
// that secret is) holds. The identity part is readable: the sidecar derives the SPIFFE ID it asks
// for from its token; the CA signs only that one.
//
//   ort1.<base64url("td/ns/sa/expiry-unix-seconds")>.<base64url(hmac)>
#ifndef OUTRIGGER_CERTS_JOIN_TOKEN_H_
#define OUTRIGGER_CERTS_JOIN_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certs/spiffe_id.h"

namespace outrigger::certs {

struct JoinTokenClaims {
  SpiffeId id;
  absl::Time expires;
};

// `secret` must be at least 32 bytes.
absl::StatusOr<std::string> MintJoinToken(absl::string_view secret, const SpiffeId& id,
                                          absl::Time expires);
// Reads the claims without checking the MAC (the sidecar's side: what identity to ask for).
absl::StatusOr<JoinTokenClaims> ReadJoinToken(absl::string_view token);
// Checks the MAC (constant time) and the expiry; errors never echo the token.
absl::StatusOr<JoinTokenClaims> VerifyJoinToken(absl::string_view secret, absl::string_view token,
                                                absl::Time now);

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_JOIN_TOKEN_H_
