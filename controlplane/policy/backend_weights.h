// Writing canary weights back into the policy files, so that a weight changed live (`outrigger
// canary`) survives a control-plane restart. Only the weight numbers change: comments, order and
// formatting elsewhere stay as the user wrote them.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_BACKEND_WEIGHTS_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_BACKEND_WEIGHTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "controlplane/policy/policy_set.h"

namespace outrigger::policy {

// Sets, in the policy at `policy_path` (a file or directory, as LoadPolicy reads it), the weight
// of every backendRef of HTTPRoute `route_namespace`/`route_name` that names a Service in
// `weights` (backend name -> weight), in every rule. An existing `weight:` value is replaced in
// place; a backendRef without one gets a `weight: N` line at its indentation.
//
// The whole edited policy is validated before anything is written; then the one file is
// replaced atomically (atomic_file.h). Errors: NotFound (no such route), InvalidArgument (a name
// that is not a backend of the route, a bad weight, or an edit that makes the policy invalid:
// every error listed), Aborted (the file changed while we edited it). When `written` is given it
// receives the policy as written.
absl::Status SetBackendWeights(const std::string& policy_path, absl::string_view route_namespace,
                               absl::string_view route_name,
                               const std::map<std::string, int64_t>& weights,
                               PolicySet* written = nullptr);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_BACKEND_WEIGHTS_H_
