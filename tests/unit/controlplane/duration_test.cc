// Gateway API (GEP-2257) durations: controlplane/policy/duration.h.
#include "controlplane/policy/duration.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"

namespace outrigger::policy {

TEST_CASE("GEP-2257 durations parse", "[duration]") {
  CHECK(*ParseGatewayDuration("10s") == absl::Seconds(10));
  CHECK(*ParseGatewayDuration("500ms") == absl::Milliseconds(500));
  CHECK(*ParseGatewayDuration("1h") == absl::Hours(1));
  CHECK(*ParseGatewayDuration("0s") == absl::ZeroDuration());
  CHECK(*ParseGatewayDuration("1h30m30s500ms") ==
        absl::Hours(1) + absl::Minutes(30) + absl::Seconds(30) + absl::Milliseconds(500));
  CHECK(*ParseGatewayDuration("00060m") == absl::Hours(1));  // leading zeros are decimal
  CHECK(*ParseGatewayDuration("99999h") == absl::Hours(99999));
}

TEST_CASE("bad durations are refused with the reason", "[duration]") {
  auto why = [](const char* text) {
    absl::StatusOr<absl::Duration> d = ParseGatewayDuration(text);
    REQUIRE_FALSE(d.ok());
    return std::string(d.status().message());
  };
  CHECK(absl::StrContains(why(""), "empty"));
  CHECK(absl::StrContains(why("10"), "no unit"));
  CHECK(absl::StrContains(why("1.5s"), "fractions"));
  CHECK(absl::StrContains(why("-1s"), "negative"));
  CHECK(absl::StrContains(why("1d"), "unknown unit 'd'"));
  CHECK(absl::StrContains(why("10us"), "unknown unit 'us'"));
  CHECK(absl::StrContains(why("123456s"), "more than 5 digits"));
  CHECK(absl::StrContains(why("1h1m1s1ms1h"), "more than 4 parts"));
  CHECK(absl::StrContains(why("1 s"), "unknown unit ' s'"));
  CHECK(absl::StrContains(why("s"), "expected a digit"));
}

TEST_CASE("durations format canonically", "[duration]") {
  CHECK(FormatGatewayDuration(absl::ZeroDuration()) == "0s");
  CHECK(FormatGatewayDuration(absl::Milliseconds(5400500)) == "1h30m500ms");
  CHECK(FormatGatewayDuration(absl::Seconds(10)) == "10s");
}

}  // namespace outrigger::policy
