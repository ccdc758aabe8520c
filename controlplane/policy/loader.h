// Reads mesh policy: a YAML file or a directory of them, each holding any number of
// Kubernetes-style documents ("---"-separated). Every document is read by its kind (kind.h) and
// the whole policy is checked at once; all problems are reported, each as
// "FILE:LINE:COL: field.path: problem". What `outrigger validate` and the control plane's file
// watcher both call, so they agree on what is valid.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_LOADER_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/policy/policy_errors.h"
#include "controlplane/policy/policy_set.h"

namespace outrigger::policy {

// One policy file's name (as errors show it) and text.
struct PolicySource {
  std::string path;
  std::string text;
};

// The files a policy at `path` is made of: the file itself, or the *.yaml and *.yml files directly
// in the directory (not hidden ones, not subdirectories), sorted by name. A directory without
// any is an error.
absl::StatusOr<std::vector<std::string>> ListPolicyFiles(const std::string& path);

// ListPolicyFiles, read.
absl::StatusOr<std::vector<PolicySource>> ReadPolicySources(const std::string& path);

// Loads and checks a policy held in memory. Returns whatever loaded; the policy is valid only
// when nothing was added to `errors`.
PolicySet BuildPolicy(const std::vector<PolicySource>& sources, PolicyErrors* errors);

// Reads and checks the policy at `path`. On any problem returns InvalidArgument listing every
// error, one per line, ordered by file and line (and, when `errors` is given, adds each there
// too); NotFound when the path cannot be read.
absl::StatusOr<PolicySet> LoadPolicy(const std::string& path, PolicyErrors* errors = nullptr);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_LOADER_H_
