// SPIFFE workload identities: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, the
// name every sidecar certificate carries in its URI SAN and that authorization policy matches.
#ifndef OUTRIGGER_CERTS_SPIFFE_ID_H_
#define OUTRIGGER_CERTS_SPIFFE_ID_H_

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace outrigger::certs {

struct SpiffeId {
  std::string trust_domain;
  std::string ns;
  std::string service_account;

  // "spiffe://cluster.local/ns/default/sa/reviews"
  std::string ToString() const;
  bool operator==(const SpiffeId&) const = default;
};

// Parses the Kubernetes-shaped SPIFFE ID above; errors say which part is wrong.
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri);

}  // namespace outrigger::certs

#endif  // OUTRIGGER_CERTS_SPIFFE_ID_H_
