// Flags from OUTRIGGER_* variables, and dashes in flag names.
#include "xds/common/env_flags.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include "absl/flags/flag.h"

ABSL_FLAG(int, test_answer, 1, "for the test");

TEST_CASE("environment variables set flags and bad values are named", "[flags]") {
  CHECK(outrigger::EnvNameForFlag("drain_timeout") == "OUTRIGGER_DRAIN_TIMEOUT");
  ::setenv("OUTRIGGER_TEST_ANSWER", "42", 1);
  REQUIRE(outrigger::ApplyEnvironmentToFlags({"test_answer"}).ok());
  CHECK(absl::GetFlag(FLAGS_test_answer) == 42);
  ::setenv("OUTRIGGER_TEST_ANSWER", "forty", 1);
  auto s = outrigger::ApplyEnvironmentToFlags({"test_answer"});
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.message()).find("OUTRIGGER_TEST_ANSWER='forty'") != std::string::npos);
  ::unsetenv("OUTRIGGER_TEST_ANSWER");
}

TEST_CASE("dashes in flag names become underscores, values untouched", "[flags]") {
  char a0[] = "prog", a1[] = "--drain-timeout=5s", a2[] = "--x-y", a3[] = "--", a4[] = "--a-b";
  char* argv[] = {a0, a1, a2, a3, a4};
  outrigger::NormalizeFlagDashes(5, argv);
  CHECK(std::string(argv[1]) == "--drain_timeout=5s");
  CHECK(std::string(argv[2]) == "--x_y");
  CHECK(std::string(argv[4]) == "--a-b");  // after "--": not a flag
}
