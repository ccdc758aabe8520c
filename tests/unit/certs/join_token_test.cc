// Join tokens: minted and verified with the same secret; tampering, another secret, expiry and
// malformed tokens are refused; the claims are readable without the secret; errors never echo
// the token.
#include "certs/join_token.h"

#include <catch2/catch.hpp>

using outrigger::certs::MintJoinToken;
using outrigger::certs::ReadJoinToken;
using outrigger::certs::SpiffeId;
using outrigger::certs::VerifyJoinToken;

namespace {
const std::string kSecret(32, 'k');
const SpiffeId kId{"cluster.local", "shop", "catalog"};
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
}  // namespace

TEST_CASE("a join token verifies with its secret and names its identity", "[token]") {
  auto token = MintJoinToken(kSecret, kId, kNow + absl::Hours(1));
  REQUIRE(token.ok());
  CHECK(token->rfind("ort1.", 0) == 0);
  auto claims = VerifyJoinToken(kSecret, *token, kNow);
  REQUIRE(claims.ok());
  CHECK(claims->id == kId);
  CHECK(claims->expires == kNow + absl::Hours(1));
  auto read = ReadJoinToken(*token);
  REQUIRE(read.ok());
  CHECK(read->id.ToString() == "spiffe://cluster.local/ns/shop/sa/catalog");
}

TEST_CASE("join tokens that were altered, foreign or expired are refused", "[token]") {
  auto token = MintJoinToken(kSecret, kId, kNow + absl::Hours(1));
  REQUIRE(token.ok());
  std::string tampered = *token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  auto bad = VerifyJoinToken(kSecret, tampered, kNow);
  CHECK_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find(tampered) == std::string::npos);

  // Another identity in the payload with the old MAC.
  auto other = MintJoinToken(kSecret, {"cluster.local", "shop", "admin"}, kNow + absl::Hours(1));
  REQUIRE(other.ok());
  const std::string spliced = other->substr(0, other->rfind('.')) + token->substr(token->rfind('.'));
  CHECK_FALSE(VerifyJoinToken(kSecret, spliced, kNow).ok());

  CHECK_FALSE(VerifyJoinToken(std::string(32, 'x'), *token, kNow).ok());
  auto expired = VerifyJoinToken(kSecret, *token, kNow + absl::Hours(2));
  CHECK_FALSE(expired.ok());
  CHECK(std::string(expired.status().message()).find("expired") != std::string::npos);
  CHECK_FALSE(VerifyJoinToken(kSecret, "ort1.garbage", kNow).ok());
  CHECK_FALSE(VerifyJoinToken(kSecret, "hello", kNow).ok());
  CHECK_FALSE(MintJoinToken("short", kId, kNow).ok());
  CHECK_FALSE(MintJoinToken(kSecret, {"cluster.local", "", "x"}, kNow).ok());
}
