// Helpers for policy tests that check errors: load YAML text as the file "p.yaml" and find an
// error by the place it must point at, found in the text itself (so cases do not count lines).
#ifndef OUTRIGGER_TESTS_UNIT_CONTROLPLANE_POLICY_CHECKS_H_
#define OUTRIGGER_TESTS_UNIT_CONTROLPLANE_POLICY_CHECKS_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/loader.h"

namespace outrigger::testing {

// Loads `text` as "p.yaml" and returns its errors, sorted.
inline std::vector<std::string> PolicyErrorsOf(const std::string& text) {
  policy::PolicyErrors errors;
  policy::BuildPolicy({{"p.yaml", text}}, &errors);
  return errors.Sorted();
}

// "p.yaml:LINE:COL" of the first occurrence of `marker` in `text` (after `after`, when given).
inline std::string Where(const std::string& text, const std::string& marker,
                         const std::string& after = "") {
  const size_t from = after.empty() ? 0 : text.find(after);
  const size_t at = text.find(marker, from == std::string::npos ? 0 : from);
  if (at == std::string::npos) return "p.yaml:?:? (marker '" + marker + "' not in the text)";
  const size_t line_start = text.rfind('\n', at);
  const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
  const int column =
      static_cast<int>(at - (line_start == std::string::npos ? 0 : line_start + 1)) + 1;
  return absl::StrCat("p.yaml:", line, ":", column);
}

// True when an error starts with `prefix` and contains `fragment`.
inline bool HasError(const std::vector<std::string>& errors, const std::string& prefix,
                     const std::string& fragment = "") {
  return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
    return absl::StartsWith(e, prefix) && absl::StrContains(e, fragment);
  });
}

inline std::string Show(const std::vector<std::string>& errors) {
  return absl::StrJoin(errors, "\n");
}

}  // namespace outrigger::testing

#endif  // OUTRIGGER_TESTS_UNIT_CONTROLPLANE_POLICY_CHECKS_H_
