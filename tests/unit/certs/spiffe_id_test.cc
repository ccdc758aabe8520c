// SPIFFE ID parsing and formatting.
#include "certs/spiffe_id.h"

#include <catch2/catch.hpp>

using outrigger::certs::ParseSpiffeId;

TEST_CASE("a Kubernetes-shaped SPIFFE ID round-trips", "[spiffe]") {
  auto id = ParseSpiffeId("spiffe://cluster.local/ns/default/sa/reviews");
  REQUIRE(id.ok());
  CHECK(id->trust_domain == "cluster.local");
  CHECK(id->ns == "default");
  CHECK(id->service_account == "reviews");
  CHECK(id->ToString() == "spiffe://cluster.local/ns/default/sa/reviews");
}

TEST_CASE("malformed SPIFFE IDs say what is wrong", "[spiffe]") {
  auto msg = [](const char* s) { return std::string(ParseSpiffeId(s).status().message()); };
  CHECK(msg("http://x/ns/a/sa/b").find("must start with spiffe://") != std::string::npos);
  CHECK(msg("spiffe://UPPER/ns/a/sa/b").find("invalid trust domain") != std::string::npos);
  CHECK(msg("spiffe://td").find("missing") != std::string::npos);
  CHECK(msg("spiffe://td/ns/a/b/c").find("path must be") != std::string::npos);
  CHECK(msg("spiffe://td/ns/../sa/b").find("non-empty") != std::string::npos);
}
