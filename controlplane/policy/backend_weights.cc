// See backend_weights.h. The edit is made on the text, at the positions the YAML loader recorded
// for the route's backendRefs (ObjectMeta::fields), so nothing else in the file moves. The edited
// text is then loaded again: that both validates the whole policy and proves each weight landed
// where we meant it to.
#include "controlplane/policy/backend_weights.h"

#include "xds/common/file.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/atomic_file.h"
#include "controlplane/policy/loader.h"

namespace outrigger::policy {
namespace {

struct Edit {
  size_t offset = 0;
  size_t length = 0;  // bytes replaced
  std::string text;
};

class Text {
 public:
  explicit Text(absl::string_view text) : text_(text) {
    starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') starts_.push_back(i + 1);
    }
  }

  // Byte offset of a 1-based (line, column); nullopt when outside the text.
  std::optional<size_t> Offset(std::pair<int, int> pos) const {
    const auto [line, column] = pos;
    if (line < 1 || static_cast<size_t>(line) > starts_.size() || column < 1) return std::nullopt;
    size_t off = starts_[line - 1] + column - 1;
    if (off >= text_.size()) return std::nullopt;
    return off;
  }

  // Where the line after `line` starts (the end of the text for the last line).
  size_t NextLineStart(int line) const {
    return static_cast<size_t>(line) < starts_.size() ? starts_[line] : text_.size();
  }

  // The line ending the file uses ("\r\n" or "\n"), judged by its first line.
  absl::string_view Eol() const {
    size_t nl = text_.find('\n');
    return nl != absl::string_view::npos && nl > 0 && text_[nl - 1] == '\r' ? "\r\n" : "\n";
  }

  // Bytes of the scalar that starts at `off`: a quoted string, or a plain one up to a space,
  // comment or flow indicator.
  size_t ScalarLength(size_t off) const {
    const char q = text_[off];
    if (q == '"' || q == '\'') {
      for (size_t i = off + 1; i < text_.size() && text_[i] != '\n'; ++i) {
        if (q == '"' && text_[i] == '\\') {
          ++i;
        } else if (text_[i] == q) {
          return i + 1 - off;
        }
      }
      return 0;
    }
    size_t i = off;
    while (i < text_.size() && !absl::ascii_isspace(static_cast<unsigned char>(text_[i])) &&
           text_[i] != ',' && text_[i] != '}' && text_[i] != ']' && text_[i] != '#') {
      ++i;
    }
    return i - off;
  }

  absl::string_view text() const { return text_; }

 private:
  absl::string_view text_;
  std::vector<size_t> starts_;  // byte offset of each line's start
};

absl::Status CannotEdit(const std::string& file, absl::string_view path) {
  return absl::InternalError(absl::StrCat(file, ": ", path,
                                          ": cannot find where to write the weight; edit it by "
                                          "hand"));
}

// The edit that gives the backendRef at `path` the weight `weight`.
absl::StatusOr<Edit> WeightEdit(const Text& text, const xds::SourceMap& fields,
                                const std::string& path, int64_t weight) {
  const std::string number = absl::StrCat(weight);
  if (auto pos = fields.Position(absl::StrCat(path, ".weight"))) {
    std::optional<size_t> off = text.Offset(*pos);
    if (!off) return CannotEdit(fields.source, path);
    const size_t length = text.ScalarLength(*off);
    if (length == 0) return CannotEdit(fields.source, path);
    return Edit{*off, length, number};
  }
  // No weight yet: add one to the backendRef's mapping.
  std::optional<std::pair<int, int>> map_pos = fields.Position(path);
  std::optional<size_t> off = map_pos ? text.Offset(*map_pos) : std::nullopt;
  if (!off) return CannotEdit(fields.source, path);
  if (text.text()[*off] == '{') return Edit{*off + 1, 0, absl::StrCat("weight: ", number, ", ")};
  // A block mapping: a line at its keys' indentation, after its last key. A backendRef's
  // fields are all scalars, so the last key's line ends the mapping.
  int last_line = map_pos->first;
  for (absl::string_view key : {"group", "kind", "name", "namespace", "port"}) {
    if (auto p = fields.Position(absl::StrCat(path, ".", key)))
      last_line = std::max(last_line, p->first);
  }
  const size_t at = text.NextLineStart(last_line);
  std::string line =
      absl::StrCat(std::string(map_pos->second - 1, ' '), "weight: ", number, text.Eol());
  if (at == text.text().size() && !text.text().empty() && text.text().back() != '\n') {
    line = absl::StrCat(text.Eol(), line);  // the file ended without a newline
  }
  return Edit{at, 0, std::move(line)};
}

std::string ApplyEdits(absl::string_view text, std::vector<Edit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.offset > b.offset; });
  std::string out(text);
  for (const Edit& e : edits) out.replace(e.offset, e.length, e.text);
  return out;
}

std::string Backends(const HttpRoute& route) {
  std::set<std::string> names;
  for (const RouteRule& rule : route.rules) {
    for (const BackendRef& b : rule.backend_refs) names.insert(b.name);
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

absl::Status SetBackendWeights(const std::string& policy_path, absl::string_view route_namespace,
                               absl::string_view route_name,
                               const std::map<std::string, int64_t>& weights, PolicySet* written) {
  if (weights.empty()) return absl::InvalidArgumentError("no backend weights given");
  absl::StatusOr<std::vector<PolicySource>> sources = ReadPolicySources(policy_path);
  if (!sources.ok()) return sources.status();
  PolicyErrors before;
  const PolicySet current = BuildPolicy(*sources, &before);
  const ObjectKey key{route_namespace.empty() ? "default" : std::string(route_namespace),
                      std::string(route_name)};
  const HttpRoute* route = current.FindHttpRoute(key);
  if (route == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("HTTPRoute ", key.ToString(), " is not in the policy at ", policy_path));
  }
  const std::string& file = route->meta.source.file;
  auto source = std::find_if(sources->begin(), sources->end(),
                             [&](const PolicySource& s) { return s.path == file; });
  if (source == sources->end()) return CannotEdit(file, "metadata");

  // One edit per backendRef named in `weights`, in every rule.
  const Text text(source->text);
  std::vector<Edit> edits;
  std::set<std::string> found;
  for (size_t r = 0; r < route->rules.size(); ++r) {
    const std::vector<BackendRef>& refs = route->rules[r].backend_refs;
    for (size_t b = 0; b < refs.size(); ++b) {
      auto w = weights.find(refs[b].name);
      if (w == weights.end()) continue;
      found.insert(w->first);
      const std::string path = absl::StrCat("spec.rules[", r, "].backendRefs[", b, "]");
      absl::StatusOr<Edit> edit = WeightEdit(text, *route->meta.fields, path, w->second);
      if (!edit.ok()) return edit.status();
      edits.push_back(*std::move(edit));
    }
  }
  for (const auto& [name, weight] : weights) {
    if (found.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a backend of HTTPRoute ",
                                                     key.ToString(),
                                                     " (its backends: ", Backends(*route), ")"));
    }
  }

  // Validate the policy as it would be, and check that every weight reads back as meant.
  std::vector<PolicySource> edited = *sources;
  const std::string new_text = ApplyEdits(source->text, std::move(edits));
  edited[source - sources->begin()].text = new_text;
  PolicyErrors after;
  PolicySet next = BuildPolicy(edited, &after);
  if (!after.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        before.empty() ? "the new weights would make the policy invalid" : "the policy is invalid",
        "; nothing was written:\n", absl::StrJoin(after.Sorted(), "\n")));
  }
  const HttpRoute* updated = next.FindHttpRoute(key);
  if (updated == nullptr) return CannotEdit(file, "metadata");
  for (const RouteRule& rule : updated->rules) {
    for (const BackendRef& b : rule.backend_refs) {
      auto w = weights.find(b.name);
      if (w != weights.end() && b.weight != w->second) return CannotEdit(file, "backendRefs");
    }
  }

  // Refuse to overwrite a change someone made since we read the file.
  absl::StatusOr<std::string> now = ReadFile(file);
  if (!now.ok()) return now.status();
  if (*now != source->text) {
    return absl::AbortedError(absl::StrCat(file,
                                           ": changed while the weights were being "
                                           "written; nothing was written, try again"));
  }
  if (absl::Status s = WriteFileAtomically(file, new_text); !s.ok()) return s;
  if (written != nullptr) *written = std::move(next);
  return absl::OkStatus();
}

}  // namespace outrigger::policy
