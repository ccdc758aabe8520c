// What every kind's loader does the same way: parse the document into the kind's protobuf
// message, convert its metadata, and report problems at the field they concern. Only the files
// under kinds/ see protobuf.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_KINDS_KIND_SUPPORT_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_KINDS_KIND_SUPPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "controlplane/policy/kind.h"
#include "controlplane/policy/policy_errors.h"
#include "controlplane/policy/policy_set.h"
#include "outrigger/policy/v1/kinds.pb.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {

// Reports the problems of one document, each at the position of the field it names.
class FieldErrors {
 public:
  FieldErrors(const xds::SourceMap& fields, PolicyErrors* errors)
      : fields_(fields), errors_(errors) {}

  void Add(absl::string_view path, absl::string_view problem) {
    errors_->Add(fields_, path, problem);
  }
  // Adds `problem` unless it is empty: the result of a field_checks.h check.
  void Check(absl::string_view path, const std::string& problem) {
    if (!problem.empty()) Add(path, problem);
  }

 private:
  const xds::SourceMap& fields_;
  PolicyErrors* errors_;
};

// Parses `doc` into `msg` (unknown fields are errors; paths named as in the YAML). Returns where
// each field was, or null after adding the error when the document does not load.
std::shared_ptr<const xds::SourceMap> ParseDocument(const PolicyDocument& doc,
                                                    google::protobuf::Message* msg,
                                                    PolicyErrors* errors);

// metadata -> ObjectMeta. Name and namespace come from the loader (doc.key); labels and
// annotations are checked here.
ObjectMeta ConvertMeta(const PolicyDocument& doc, const v1::ObjectMeta& meta,
                       std::shared_ptr<const xds::SourceMap> fields, FieldErrors* err);

// "spec.ports[3]".
std::string Item(absl::string_view path, int index);

// "9080 (http), 9443 (https)": a Service's ports, for messages about a port that is not one.
std::string PortList(const Service& svc);

// Parses a GEP-2257 duration at `path`; nullopt (and an error) when it is bad.
std::optional<absl::Duration> DurationField(absl::string_view path, absl::string_view text,
                                            FieldErrors* err);
// The same for a duration that must be longer than zero. nullopt when `text` is empty (not
// written) or bad.
std::optional<absl::Duration> PositiveDurationField(absl::string_view path, absl::string_view text,
                                                    FieldErrors* err);

// An integer field that must be within [min, max]: its value, or nullopt when it is not written
// (`has` false) or out of range (after the error).
std::optional<uint32_t> RangeField(absl::string_view path, bool has, int64_t value, int64_t min,
                                   int64_t max, FieldErrors* err);
// A percentage, 0 to 100 (fractions allowed).
std::optional<double> PercentField(absl::string_view path, bool has, double value,
                                   FieldErrors* err);

// The Service named by a policy's spec.targetRef (GEP-713: group "" or "core", kind Service, a
// name), checked. `what` names the policy for messages ("a TrafficPolicy").
std::string TargetServiceName(const v1::PolicyTargetReference& in, absl::string_view what,
                              FieldErrors* err);
// Whether the Service `target` of the policy `meta` is defined (or at least declared by a document
// that failed to load); else adds the error at spec.targetRef.name.
bool CheckTargetServiceDefined(const PolicySet& set, const ObjectMeta& meta,
                               const ObjectKey& target, absl::string_view what,
                               PolicyErrors* errors);

// The loaded resources of `kind` in the order their documents were read, leaving out documents
// whose name was already taken (the loader reports those): checks that report "the second one"
// follow the files.
template <typename T>
std::vector<const T*> InFileOrder(const PolicySet& set, absl::string_view kind,
                                  const std::map<ObjectKey, T>& loaded) {
  std::vector<const T*> out;
  for (const ResourceId& r : set.resources) {
    if (r.kind != kind) continue;
    auto it = loaded.find(r.key);
    if (it == loaded.end() || it->second.meta.source.file != r.source.file ||
        it->second.meta.source.line != r.source.line) {
      continue;
    }
    out.push_back(&it->second);
  }
  return out;
}

// The largest count a policy field takes (what an int32 holds).
inline constexpr int64_t kMaxCount = 2147483647;

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_KINDS_KIND_SUPPORT_H_
