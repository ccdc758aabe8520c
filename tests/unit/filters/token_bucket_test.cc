// The token bucket: starting full, draining, refilling per interval up to the cap, and the
// long-run rate (no drift from being asked at times that are not on interval boundaries).
#include "filters/ratelimit/token_bucket.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>

using outrigger::ratelimit::TokenBucket;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

int TakeAll(TokenBucket& bucket, int64_t now_ns) {
  int taken = 0;
  while (bucket.TryTake(now_ns)) ++taken;
  return taken;
}

}  // namespace

TEST_CASE("token bucket starts full and drains", "[token_bucket]") {
  const int64_t t0 = 77 * kSecond;
  TokenBucket bucket(10, 5, kSecond, t0);
  CHECK(bucket.tokens() == 10);
  for (int i = 0; i < 10; ++i) CHECK(bucket.TryTake(t0));
  CHECK_FALSE(bucket.TryTake(t0));
  CHECK(bucket.tokens() == 0);
}

TEST_CASE("token bucket refills per whole interval up to the cap", "[token_bucket]") {
  const int64_t t0 = 77 * kSecond;
  TokenBucket bucket(10, 4, kSecond, t0);
  REQUIRE(TakeAll(bucket, t0) == 10);
  CHECK_FALSE(bucket.TryTake(t0 + kSecond - 1));  // not a whole interval yet
  CHECK(TakeAll(bucket, t0 + kSecond) == 4);
  CHECK(TakeAll(bucket, t0 + 3 * kSecond) == 8);  // two intervals at once
  CHECK(TakeAll(bucket, t0 + 3 * kSecond + 999 * kMs) == 0);
  CHECK(TakeAll(bucket, t0 + 100 * kSecond) == 10);  // capped at max
  // A jump far into the future neither overflows nor exceeds the cap.
  CHECK(TakeAll(bucket, t0 + (int64_t{1} << 62)) == 10);
}

TEST_CASE("token bucket defaults: tokens_per_fill 0 refills all, interval <= 0 is 1 s",
          "[token_bucket]") {
  TokenBucket bucket(3, 0, 0, 0);
  REQUIRE(TakeAll(bucket, 0) == 3);
  CHECK(TakeAll(bucket, kSecond - 1) == 0);
  CHECK(TakeAll(bucket, kSecond) == 3);
}

TEST_CASE("token bucket does not drift when asked between boundaries", "[token_bucket]") {
  // One token per 100 ms, asked every 7 ms for 10 s: exactly 100 refills. A bucket that reset its
  // fill time to "now" on each refill would lose up to 6 ms per interval and give ~94.
  TokenBucket bucket(1000, 1, 100 * kMs, 0);
  REQUIRE(TakeAll(bucket, 0) == 1000);
  int taken = 0;
  for (int64_t now = 7 * kMs; now <= 10 * kSecond; now += 7 * kMs) taken += TakeAll(bucket, now);
  // The last ask is at 9.996 s: the refills at 0.1 s .. 9.9 s, 99 of them.
  CHECK(taken == 99);
  CHECK(TakeAll(bucket, 10 * kSecond) == 1);
}

TEST_CASE("token bucket rate over a long fake time is the configured rate", "[token_bucket]") {
  // 2 tokens per 250 ms = 8 a second. Greedy takers asked at random gaps of up to 500 ms never
  // let the bucket reach its cap of 5, so every token made is taken.
  TokenBucket bucket(5, 2, 250 * kMs, 0);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> gap(1, 500 * kMs);
  int64_t now = 0;
  int64_t taken = TakeAll(bucket, 0);  // the initial 5, before refills could top them up
  const int64_t end = 1000 * kSecond;
  while (true) {
    const int64_t next = now + gap(rng);
    if (next > end) break;
    now = next;
    taken += TakeAll(bucket, now);
  }
  taken += TakeAll(bucket, end);
  CHECK(taken == 5 + 8 * 1000);
}
