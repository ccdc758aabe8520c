// Authorization of inbound requests (like Istio's AuthorizationPolicy): who may call this
// workload, by the caller's SPIFFE ID (from mTLS) and namespace, and the request's path, method
// and headers. DENY policies are checked first; if any ALLOW policy exists, a request must match
// one of them. Dry-run policies are evaluated and reported but never change the outcome. Built
// once from the InboundPolicy; immutable and shared by every worker.
#ifndef OUTRIGGER_FILTERS_AUTHZ_AUTHORIZATION_H_
#define OUTRIGGER_FILTERS_AUTHZ_AUTHORIZATION_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace outrigger::v1 {
class AuthorizationPolicy;
}

namespace outrigger::authz {

// "exact", "prefix*", "*suffix" or "*".
struct StringMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kAny };
  Kind kind = Kind::kExact;
  std::string value;
  bool Matches(absl::string_view s) const;
};

struct HeaderCondition {
  std::string name;  // lower case
  std::vector<std::string> values;
};

struct Rule {
  std::vector<StringMatch> principals;
  std::vector<std::string> namespaces;
  std::vector<StringMatch> paths;
  std::vector<std::string> methods;
  std::vector<HeaderCondition> headers;
  std::vector<StringMatch> not_principals;
  std::vector<StringMatch> not_paths;
};

struct Policy {
  std::string name;
  bool deny = false;  // action DENY (else ALLOW)
  bool dry_run = false;
  std::vector<Rule> rules;
};

// What a decision looks at.
struct Request {
  absl::string_view principal;  // "" for a plaintext (unauthenticated) caller
  absl::string_view path;       // with or without the query string
  absl::string_view method;
  absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)> header;
};

struct Decision {
  bool allowed = true;
  // The policy that decided ("ns/name"), or "" (no policy applied / no ALLOW matched).
  std::string policy;
  // A dry-run policy that would have denied the request, or "".
  std::string dry_run_denied_by;
};

class Authorizer {
 public:
  // Errors name the field ("authorization[1].rules[0].paths[2]: ...").
  static absl::StatusOr<std::shared_ptr<const Authorizer>> FromProto(
      const google::protobuf::RepeatedPtrField<v1::AuthorizationPolicy>& policies);

  Decision Decide(const Request& request) const;
  bool empty() const { return policies_.empty(); }

 private:
  std::vector<Policy> policies_;
};

}  // namespace outrigger::authz

#endif  // OUTRIGGER_FILTERS_AUTHZ_AUTHORIZATION_H_
