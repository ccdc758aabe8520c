// Collects every problem found in a policy, so that one `outrigger validate` run (or one rejected
// change in the control plane) lists them all, each as "FILE:LINE:COL: field.path: problem".
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_POLICY_ERRORS_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_POLICY_ERRORS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {

class PolicyErrors {
 public:
  // A problem with the field at `path` ("spec.rules[0].backendRefs[1].weight") of the document
  // `fields` describes: placed at that field, or at the nearest enclosing one it knows.
  void Add(const xds::SourceMap& fields, absl::string_view path, absl::string_view problem);
  // A message already in "FILE:LINE:COL: ..." form (the YAML loader's errors) or "FILE: ...".
  void Add(absl::string_view located_message);
  void Add(const absl::Status& status) { Add(status.message()); }

  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  // Every error, ordered by file, line and column (ties keep the order found).
  std::vector<std::string> Sorted() const;
  // All of them in one status (InvalidArgument, one error per line), or OK when there are none.
  absl::Status ToStatus() const;

 private:
  std::vector<std::string> errors_;
};

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_POLICY_ERRORS_H_
