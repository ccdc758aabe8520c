// See spiffe_id.h. The rules follow the SPIFFE ID spec: lowercase trust domain of letters, digits,
// '.', '-' and '_'; path segments of letters, digits, '.', '-' and '_', never "." or "..".
#include "certs/spiffe_id.h"

#include <vector>

#include "absl/strings/string_view.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace outrigger::certs {
namespace {

bool ValidTrustDomain(absl::string_view td) {
  if (td.empty() || td.size() > 255) return false;
  for (char c : td) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

bool ValidSegment(absl::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::string SpiffeId::ToString() const {
  return absl::StrCat("spiffe://", trust_domain, "/ns/", ns, "/sa/", service_account);
}

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri) {
  constexpr absl::string_view kScheme = "spiffe://";
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat("'", uri, "': must start with spiffe://"));
  }
  absl::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  absl::string_view td = rest.substr(0, slash);
  if (!ValidTrustDomain(td)) {
    return absl::InvalidArgumentError(absl::StrCat("'", uri, "': invalid trust domain '", td,
                                                   "' (lowercase letters, digits, . - _)"));
  }
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", uri, "': missing /ns/<ns>/sa/<sa> path"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest.substr(slash + 1), '/');
  if (parts.size() != 4 || parts[0] != "ns" || parts[2] != "sa") {
    return absl::InvalidArgumentError(
        absl::StrCat("'", uri, "': path must be /ns/<namespace>/sa/<service-account>"));
  }
  if (!ValidSegment(parts[1]) || !ValidSegment(parts[3])) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", uri, "': namespace and service account must be non-empty and use only "
                     "letters, digits, . - _"));
  }
  return SpiffeId{std::string(td), std::string(parts[1]), std::string(parts[3])};
}

}  // namespace outrigger::certs
