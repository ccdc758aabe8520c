// Gateway API durations (GEP-2257): "10s", "500ms", "1h30m". The one duration syntax policy
// documents use, so that HTTPRoute timeouts and our own kinds read alike.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_DURATION_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::policy {

// Parses a GEP-2257 duration: one to four parts, each 1-5 decimal digits followed by a unit h, m,
// s or ms; the value is their sum (^([0-9]{1,5}(h|m|s|ms)){1,4}$ read as Go's
// time.ParseDuration). No sign, no fraction, no spaces. The error says what is wrong with `text`.
absl::StatusOr<absl::Duration> ParseGatewayDuration(absl::string_view text);

// The canonical GEP-2257 form: "0s", or each unit at most once, largest first ("1h30m500ms").
std::string FormatGatewayDuration(absl::Duration d);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_DURATION_H_
