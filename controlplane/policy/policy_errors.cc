// See policy_errors.h. Errors are kept as the text users read; the sort key is parsed back from
// its "FILE:LINE:COL: " prefix.
#include "controlplane/policy/policy_errors.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace outrigger::policy {
namespace {

struct SortKey {
  std::string file;
  int line = 0;
  int column = 0;
};

// "a/b.yaml:12:7: x: y" -> {a/b.yaml, 12, 7}; "a/b.yaml: x" -> {a/b.yaml, 0, 0}.
SortKey KeyOf(absl::string_view error) {
  SortKey key;
  absl::string_view prefix = error.substr(0, error.find(": "));
  size_t c2 = prefix.rfind(':');
  size_t c1 = c2 == absl::string_view::npos ? c2 : prefix.rfind(':', c2 - 1);
  if (c1 != absl::string_view::npos &&
      absl::SimpleAtoi(prefix.substr(c1 + 1, c2 - c1 - 1), &key.line) &&
      absl::SimpleAtoi(prefix.substr(c2 + 1), &key.column)) {
    key.file = std::string(prefix.substr(0, c1));
  } else {
    key = SortKey{std::string(prefix), 0, 0};
  }
  return key;
}

}  // namespace

void PolicyErrors::Add(const xds::SourceMap& fields, absl::string_view path,
                       absl::string_view problem) {
  // A field that is missing altogether has no position: point at the start of its document.
  std::optional<std::string> where = fields.Locate(path);
  if (!where) {
    if (auto root = fields.Position("")) {
      where = absl::StrCat(fields.source, ":", root->first, ":", root->second);
    } else {
      where = fields.source;
    }
  }
  errors_.push_back(absl::StrCat(*where, ": ", path, ": ", problem));
}

void PolicyErrors::Add(absl::string_view located_message) { errors_.emplace_back(located_message); }

std::vector<std::string> PolicyErrors::Sorted() const {
  std::vector<std::pair<SortKey, const std::string*>> keyed;
  keyed.reserve(errors_.size());
  for (const std::string& e : errors_) keyed.emplace_back(KeyOf(e), &e);
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.file, a.first.line, a.first.column) <
           std::tie(b.first.file, b.first.line, b.first.column);
  });
  std::vector<std::string> out;
  out.reserve(keyed.size());
  for (const auto& [key, e] : keyed) out.push_back(*e);
  return out;
}

absl::Status PolicyErrors::ToStatus() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(Sorted(), "\n"));
}

}  // namespace outrigger::policy
