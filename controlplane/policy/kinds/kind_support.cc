// See kind_support.h.
#include "controlplane/policy/kinds/kind_support.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/duration.h"
#include "controlplane/policy/field_checks.h"

namespace outrigger::policy {

std::shared_ptr<const xds::SourceMap> ParseDocument(const PolicyDocument& doc,
                                                    google::protobuf::Message* msg,
                                                    PolicyErrors* errors) {
  auto fields = std::make_shared<xds::SourceMap>();
  xds::YamlOptions options;
  options.line_offset = doc.yaml.first_line;
  options.json_names = true;
  if (absl::Status s = xds::YamlToProto(doc.yaml.text, doc.file, msg, fields.get(), options);
      !s.ok()) {
    errors->Add(s);
    return nullptr;
  }
  return fields;
}

ObjectMeta ConvertMeta(const PolicyDocument& doc, const v1::ObjectMeta& meta,
                       std::shared_ptr<const xds::SourceMap> fields, FieldErrors* err) {
  ObjectMeta out;
  out.name = doc.key.name;
  out.ns = doc.key.ns;
  out.source = doc.start;
  for (const auto& [k, v] : meta.labels()) {
    const std::string path = absl::StrCat("metadata.labels.", k);
    err->Check(path, CheckLabelKey(k));
    err->Check(path, CheckLabelValue(v));
    out.labels.emplace(k, v);
  }
  for (const auto& [k, v] : meta.annotations()) {
    err->Check(absl::StrCat("metadata.annotations.", k), CheckLabelKey(k));
    out.annotations.emplace(k, v);
  }
  out.fields = std::move(fields);
  return out;
}

std::string Item(absl::string_view path, int index) { return absl::StrCat(path, "[", index, "]"); }

std::string PortList(const Service& svc) {
  return absl::StrJoin(svc.ports, ", ", [](std::string* out, const ServicePort& p) {
    absl::StrAppend(out, p.port);
    if (!p.name.empty()) absl::StrAppend(out, " (", p.name, ")");
  });
}

std::optional<absl::Duration> DurationField(absl::string_view path, absl::string_view text,
                                            FieldErrors* err) {
  absl::StatusOr<absl::Duration> d = ParseGatewayDuration(text);
  if (!d.ok()) {
    err->Add(path, d.status().message());
    return std::nullopt;
  }
  return *d;
}

std::optional<absl::Duration> PositiveDurationField(absl::string_view path, absl::string_view text,
                                                    FieldErrors* err) {
  if (text.empty()) return std::nullopt;
  std::optional<absl::Duration> d = DurationField(path, text, err);
  if (d && *d <= absl::ZeroDuration()) {
    err->Add(path, absl::StrCat("'", text, "' must be longer than 0"));
    return std::nullopt;
  }
  return d;
}

std::optional<uint32_t> RangeField(absl::string_view path, bool has, int64_t value, int64_t min,
                                   int64_t max, FieldErrors* err) {
  if (!has) return std::nullopt;
  if (value < min || value > max) {
    err->Add(path, max >= kMaxCount
                       ? absl::StrCat(value, " is too small: at least ", min)
                       : absl::StrCat(value, " is out of range (", min, " to ", max, ")"));
    return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

std::optional<double> PercentField(absl::string_view path, bool has, double value,
                                   FieldErrors* err) {
  if (!has) return std::nullopt;
  if (!std::isfinite(value) || value < 0 || value > 100) {
    err->Add(path, absl::StrCat(value, " is not a percentage (0 to 100)"));
    return std::nullopt;
  }
  return value;
}

std::string TargetServiceName(const v1::PolicyTargetReference& in, absl::string_view what,
                              FieldErrors* err) {
  if (in.has_group() && !in.group().empty() && in.group() != "core") {
    err->Add("spec.targetRef.group",
             absl::StrCat("'", in.group(), "': a Service is in the core group (\"\")"));
  }
  if (in.kind().empty()) {
    err->Add("spec.targetRef.kind", "required: Service");
  } else if (in.kind() != "Service") {
    err->Add("spec.targetRef.kind",
             absl::StrCat("'", in.kind(), "' is not supported: ", what, " targets a Service"));
  }
  if (in.name().empty()) {
    err->Add("spec.targetRef.name", "required: the Service this policy applies to");
  } else {
    err->Check("spec.targetRef.name", CheckDnsLabel(in.name()));
  }
  return in.name();
}

bool CheckTargetServiceDefined(const PolicySet& set, const ObjectMeta& meta,
                               const ObjectKey& target, absl::string_view what,
                               PolicyErrors* errors) {
  if (set.FindService(target) != nullptr || Declared(set, "Service", target)) return true;
  errors->Add(*meta.fields, "spec.targetRef.name",
              absl::StrCat("Service ", target.ToString(), " is not defined in the policy (", what,
                           " targets a Service of its own namespace)"));
  return false;
}

}  // namespace outrigger::policy
