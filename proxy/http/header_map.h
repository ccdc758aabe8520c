// Header fields of one HTTP message, in arrival order, stored in one reusable arena so that a
// keep-alive connection parses request after request without allocating. Names compare without
// case. Removal marks an entry dead; serialization skips it.
#ifndef OUTRIGGER_PROXY_HTTP_HEADER_MAP_H_
#define OUTRIGGER_PROXY_HTTP_HEADER_MAP_H_

#include "absl/strings/string_view.h"
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outrigger::http {

class HeaderMap {
 public:
  void Clear() {
    buf_.clear();
    entries_.clear();
  }
  void Add(absl::string_view name, absl::string_view value);
  // The first value of `name`, if present.
  std::optional<absl::string_view> Get(absl::string_view name) const;
  size_t Count(absl::string_view name) const;
  // Removes every field called `name`; returns how many.
  size_t Remove(absl::string_view name);
  void Set(absl::string_view name, absl::string_view value) {
    Remove(name);
    Add(name, value);
  }

  template <typename F>  // F(absl::string_view name, absl::string_view value)
  void ForEach(F&& f) const {
    for (const Entry& e : entries_) {
      if (e.name_len == 0) continue;
      f(absl::string_view(buf_.data() + e.name_off, e.name_len),
        absl::string_view(buf_.data() + e.value_off, e.value_len));
    }
  }
  size_t size() const;

 private:
  struct Entry {
    uint32_t name_off, name_len, value_off, value_len;
  };
  absl::string_view name(const Entry& e) const { return {buf_.data() + e.name_off, e.name_len}; }
  absl::string_view value(const Entry& e) const {
    return {buf_.data() + e.value_off, e.value_len};
  }

  std::string buf_;
  std::vector<Entry> entries_;
};

// "a, b ,c" -> calls f("a"), f("b"), f("c"); empty items are skipped.
template <typename F>
void ForEachToken(absl::string_view list, F&& f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    absl::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) f(item);
    if (comma == absl::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool EqualsIgnoreCase(absl::string_view a, absl::string_view b);

}  // namespace outrigger::http

#endif  // OUTRIGGER_PROXY_HTTP_HEADER_MAP_H_
