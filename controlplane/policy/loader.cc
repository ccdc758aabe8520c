// See loader.h. Each document is read twice: first for apiVersion, kind and metadata only
// (unknown fields ignored), to pick its kind and check its name; then by the kind itself, with
// unknown fields as errors. Checks between resources run once every document is in.
#include "controlplane/policy/loader.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kind.h"
#include "controlplane/policy/kinds/kind_support.h"
#include "outrigger/policy/v1/kinds.pb.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {
namespace {

namespace fs = std::filesystem;

// FNV-1a, 64 bits: stable across runs and builds, which std::hash is not.
class ContentHash {
 public:
  void Update(absl::string_view bytes) {
    for (unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 0x100000001b3ULL;
    }
    hash_ ^= 0xff;  // a separator, so that "ab"+"c" and "a"+"bc" differ
    hash_ *= 0x100000001b3ULL;
  }
  std::string Hex() const { return absl::StrCat(absl::Hex(hash_, absl::kZeroPad16)); }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

bool IsPolicyFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return !absl::StartsWith(name, ".") &&
         (absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml"));
}

// Reads a document's apiVersion, kind and metadata and finds its kind. Null (after adding the
// error) when the document cannot be used at all.
const PolicyKind* ReadHeader(const std::string& file, const xds::YamlDocument& yaml,
                             PolicyDocument* doc, xds::SourceMap* fields_out,
                             PolicyErrors* errors) {
  v1::TypeMeta header;
  xds::SourceMap& fields = *fields_out;
  xds::YamlOptions options;
  options.line_offset = yaml.first_line;
  options.ignore_unknown_fields = true;
  options.json_names = true;
  if (absl::Status s = xds::YamlToProto(yaml.text, file, &header, &fields, options); !s.ok()) {
    errors->Add(s);
    return nullptr;
  }
  doc->file = file;
  doc->yaml = yaml;
  const auto root = fields.Position("").value_or(std::make_pair(yaml.first_line + 1, 1));
  doc->start = SourceLocation{file, root.first, root.second};
  const PolicyKind* kind = FindPolicyKind(header.api_version(), header.kind());
  if (kind == nullptr) {
    // The same kind under another version (often gateway.networking.k8s.io/v1beta1) says which.
    const PolicyKind* same_kind = nullptr;
    for (const PolicyKind* k : PolicyKinds()) {
      if (k->kind == header.kind()) same_kind = k;
    }
    std::string path = "kind";
    std::string problem;
    if (header.kind().empty() || header.api_version().empty()) {
      path = header.api_version().empty() ? "apiVersion" : "kind";
      problem = "every document needs apiVersion and kind";
    } else if (same_kind != nullptr) {
      path = "apiVersion";
      problem = absl::StrCat("'", header.api_version(), "' is not supported for ", header.kind(),
                             ": use ", same_kind->api_version);
    } else {
      problem = absl::StrCat("unsupported kind '", header.kind(), "' of apiVersion '",
                             header.api_version(), "'");
    }
    errors->Add(fields, path, absl::StrCat(problem, " (supported: ", SupportedKinds(), ")"));
    return nullptr;
  }
  FieldErrors err(fields, errors);
  const v1::ObjectMeta& meta = header.metadata();
  if (meta.name().empty()) {
    err.Add("metadata.name", "required");
  } else {
    err.Check("metadata.name", CheckDnsSubdomain(meta.name()));
  }
  if (!kind->namespaced && !meta.namespace_().empty()) {
    err.Add("metadata.namespace",
            absl::StrCat(kind->kind, " is cluster-scoped: it has no namespace"));
  } else if (!meta.namespace_().empty()) {
    err.Check("metadata.namespace", CheckDnsLabel(meta.namespace_()));
  }
  doc->key.name = meta.name();
  doc->key.ns = !kind->namespaced ? "" : meta.namespace_().empty() ? "default" : meta.namespace_();
  return kind;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListPolicyFiles(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or directory"));
  }
  if (!fs::is_directory(st)) return std::vector<std::string>{path};
  std::vector<std::string> files;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (IsPolicyFile(it->path()) && it->is_regular_file()) files.push_back(it->path().string());
  }
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot list: ", ec.message()));
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat(path, ": no *.yaml or *.yml files in the directory"));
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<std::vector<PolicySource>> ReadPolicySources(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> files = ListPolicyFiles(path);
  if (!files.ok()) return files.status();
  std::vector<PolicySource> sources;
  for (const std::string& f : *files) {
    std::ifstream in(f, std::ios::binary);
    if (!in.is_open()) return absl::NotFoundError(absl::StrCat(f, ": cannot open file"));
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) return absl::NotFoundError(absl::StrCat(f, ": cannot read file"));
    sources.push_back({f, text.str()});
  }
  return sources;
}

PolicySet BuildPolicy(const std::vector<PolicySource>& sources, PolicyErrors* errors) {
  PolicySet set;
  ContentHash hash;
  std::map<std::pair<std::string, ObjectKey>, SourceLocation> seen;  // (kind, key) -> where
  for (const PolicySource& source : sources) {
    set.files.push_back(source.path);
    for (const xds::YamlDocument& yaml : xds::SplitYamlDocuments(source.text)) {
      hash.Update(yaml.text);
      PolicyDocument doc;
      xds::SourceMap header_fields;
      const PolicyKind* kind = ReadHeader(source.path, yaml, &doc, &header_fields, errors);
      if (kind == nullptr) continue;
      const std::string kind_name(kind->kind);
      if (!doc.key.name.empty()) {
        auto [it, fresh] = seen.emplace(std::make_pair(kind_name, doc.key), doc.start);
        if (!fresh) {
          errors->Add(header_fields, "metadata.name",
                      absl::StrCat("duplicate ", kind_name, " ", doc.key.ToString(),
                                   " (first defined at ", it->second.ToString(), ")"));
        }
      }
      set.resources.push_back({kind_name, doc.key, doc.start});
      kind->load(doc, &set, errors);
    }
  }
  for (const PolicyKind* kind : PolicyKinds()) {
    if (kind->check != nullptr) kind->check(set, errors);
  }
  set.version = hash.Hex();
  return set;
}

absl::StatusOr<PolicySet> LoadPolicy(const std::string& path, PolicyErrors* errors) {
  absl::StatusOr<std::vector<PolicySource>> sources = ReadPolicySources(path);
  if (!sources.ok()) {
    if (errors != nullptr) errors->Add(sources.status());
    return sources.status();
  }
  PolicyErrors local;
  PolicySet set = BuildPolicy(*sources, &local);
  if (local.empty()) return set;
  if (errors != nullptr) {
    for (const std::string& e : local.Sorted()) errors->Add(e);
  }
  return local.ToStatus();
}

}  // namespace outrigger::policy
