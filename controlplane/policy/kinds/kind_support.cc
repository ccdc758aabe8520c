// See kind_support.h.
#include "controlplane/policy/kinds/kind_support.h"

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

}  // namespace outrigger::policy
