// The kinds of policy document the loader understands, as a table: each kind is one file under
// kinds/ that reads its documents into the PolicySet and checks them, and one line in
// kinds/kind_table.cc. Adding a kind touches nothing else.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_KIND_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_KIND_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "controlplane/policy/policy_errors.h"
#include "controlplane/policy/policy_set.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {

// One document of a policy file, as the loader hands it to its kind.
struct PolicyDocument {
  std::string file;
  xds::YamlDocument yaml;  // its text and where it starts in the file
  // metadata.name and metadata.namespace (defaulted, "" for cluster-scoped kinds), already
  // checked by the loader.
  ObjectKey key;
  SourceLocation start;  // the document's first field
};

struct PolicyKind {
  absl::string_view api_version;  // "gateway.networking.k8s.io/v1"
  absl::string_view kind;         // "HTTPRoute"
  bool namespaced = true;
  // Reads one document (unknown fields are errors), checks what can be checked on its own, and
  // adds the resource to `set` unless its name is already taken there. Every problem goes to
  // `errors`; the rest of the document is still checked.
  void (*load)(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) = nullptr;
  // Checks that need the whole policy (references to other resources); run after every document
  // is loaded. May be null.
  void (*check)(const PolicySet& set, PolicyErrors* errors) = nullptr;
};

// Every kind, in the order `outrigger validate` lists them.
const std::vector<const PolicyKind*>& PolicyKinds();
const PolicyKind* FindPolicyKind(absl::string_view api_version, absl::string_view kind);
// "v1 Service, discovery.k8s.io/v1 EndpointSlice, ...": for error messages.
std::string SupportedKinds();

// True when a document of `kind` named `key` was read, even one that failed to load: a reference
// to it is then not reported again as missing.
bool Declared(const PolicySet& set, absl::string_view kind, const ObjectKey& key);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_KIND_H_
