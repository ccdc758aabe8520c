// The one JSON string escaper: used where we write JSON by hand (the YAML loader's JSON, the
// access log) because building a document object per line would cost more than it gives.
#ifndef OUTRIGGER_XDS_COMMON_JSON_H_
#define OUTRIGGER_XDS_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace outrigger {

// Appends `s` to `out` as a JSON string, quotes included.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace outrigger

#endif  // OUTRIGGER_XDS_COMMON_JSON_H_
