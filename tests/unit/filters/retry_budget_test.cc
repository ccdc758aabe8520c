// The retry budget: the percentage of requests, the per-second floor, the sliding window's
// expiry, and the bound it puts on load during an outage.
#include "filters/retry/retry_budget.h"

#include <catch2/catch.hpp>
#include <cstdint>

using outrigger::retry::RetryBudget;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kTtl = 10 * kSecond;

// Withdraws until refused (at most `limit` times); returns how many succeeded.
int Drain(RetryBudget& budget, int64_t now_ns, int limit = 100000) {
  int granted = 0;
  while (granted < limit && budget.TryWithdraw(now_ns)) ++granted;
  return granted;
}

}  // namespace

TEST_CASE("retry budget allows percent of the requests", "[retry_budget]") {
  RetryBudget budget(20, 0, kTtl);
  const int64_t now = 1000 * kSecond;
  CHECK_FALSE(budget.TryWithdraw(now));  // no requests, no floor: nothing
  for (int i = 0; i < 1000; ++i) budget.RecordRequest(now);
  CHECK(Drain(budget, now) == 200);
  CHECK_FALSE(budget.TryWithdraw(now + kSecond));
  // Five more requests earn exactly one more retry.
  for (int i = 0; i < 5; ++i) budget.RecordRequest(now + kSecond);
  CHECK(Drain(budget, now + kSecond) == 1);
}

TEST_CASE("retry budget percentages that are inexact in binary", "[retry_budget]") {
  // 0.29 * 100 is 28.999... in doubles; the budget must still allow 29.
  RetryBudget budget(29, 0, kTtl);
  for (int i = 0; i < 100; ++i) budget.RecordRequest(0);
  CHECK(Drain(budget, 0) == 29);
}

TEST_CASE("retry budget floor alone allows min_per_second * ttl", "[retry_budget]") {
  SECTION("whole") {
    RetryBudget budget(20, 10, kTtl);
    CHECK(Drain(budget, 5 * kSecond) == 100);
  }
  SECTION("fractional (a worker's share)") {
    RetryBudget budget(20, 0.5, kTtl);
    CHECK(Drain(budget, 5 * kSecond) == 5);
  }
  SECTION("floor and percent add up") {
    RetryBudget budget(20, 1, kTtl);
    for (int i = 0; i < 100; ++i) budget.RecordRequest(0);
    CHECK(Drain(budget, 0) == 30);
  }
}

TEST_CASE("retry budget window expires after the ttl", "[retry_budget]") {
  const int64_t t0 = 3 * kSecond + 123;
  RetryBudget budget(20, 1, kTtl);  // floor 10
  CHECK(Drain(budget, t0) == 10);
  CHECK_FALSE(budget.TryWithdraw(t0 + kTtl / 2));
  CHECK_FALSE(budget.TryWithdraw(t0 + kTtl - kTtl / 5));
  // By t0 + ttl the spent retries have left the window.
  CHECK(Drain(budget, t0 + kTtl) == 10);

  SECTION("requests expire too: their share of the budget goes with them") {
    const int64_t t1 = t0 + 2 * kTtl;
    for (int i = 0; i < 100; ++i) budget.RecordRequest(t1);
    CHECK(Drain(budget, t1) == 30);
    CHECK(Drain(budget, t1 + kTtl) == 10);
  }
  SECTION("the window slides: only the old half expires") {
    const int64_t t1 = t0 + 2 * kTtl;
    for (int i = 0; i < 100; ++i) budget.RecordRequest(t1);
    for (int i = 0; i < 100; ++i) budget.RecordRequest(t1 + kTtl / 2);
    CHECK(Drain(budget, t1 + kTtl / 2) == 50);
    // By t1 + ttl the first 100 requests have left the window, but the 50 retries taken at
    // t1 + ttl/2 still count against the 100 that remain (20% of them + the floor = 30).
    CHECK_FALSE(budget.TryWithdraw(t1 + kTtl - 1));
    CHECK_FALSE(budget.TryWithdraw(t1 + kTtl));
    CHECK(Drain(budget, t1 + kTtl / 2 + kTtl) == 10);
  }
  SECTION("a jump far beyond the window") {
    CHECK(Drain(budget, t0 + 1000 * kTtl) == 10);
    CHECK(Drain(budget, t0 + 1000 * kTtl + 1) == 0);
  }
}

TEST_CASE("retry budget bounds the load of an outage", "[retry_budget]") {
  // Every request fails and wants up to 3 retries. Without a budget that is 4 tries a request.
  constexpr double kPercent = 20;
  constexpr double kMinPerSecond = 2;
  const double floor = kMinPerSecond * kTtl / kSecond;

  SECTION("within one window: tries <= 1.2 * requests + floor") {
    RetryBudget budget(kPercent, kMinPerSecond, kTtl);
    int64_t requests = 0;
    int64_t tries = 0;
    // 100 requests a second for 9.9 s: all inside one ttl.
    for (int64_t now = 0; now < kTtl - kTtl / 100; now += kSecond / 100) {
      budget.RecordRequest(now);
      ++requests;
      ++tries;
      for (int retry = 0; retry < 3 && budget.TryWithdraw(now); ++retry) ++tries;
    }
    CHECK(tries <= 1.2 * requests + floor);
    // And the budget is used, not just refused: within a couple of retries of the bound.
    CHECK(tries >= 1.2 * requests + floor - 2);
  }

  SECTION("over many windows the long-run rate stays near 1.2") {
    RetryBudget budget(kPercent, kMinPerSecond, kTtl);
    int64_t requests = 0;
    int64_t tries = 0;
    const int64_t duration = 30 * kTtl;
    for (int64_t now = 0; now < duration; now += kSecond / 100) {
      budget.RecordRequest(now);
      ++requests;
      ++tries;
      for (int retry = 0; retry < 3 && budget.TryWithdraw(now); ++retry) ++tries;
    }
    // Each ttl may spend its floor once on top of 20% of its requests.
    CHECK(tries <= 1.2 * requests + floor * (duration / kTtl));
    CHECK(tries > 1.15 * requests);
  }
}

TEST_CASE("retry budget with nonsense config stays safe", "[retry_budget]") {
  RetryBudget budget(-5, -1, 0);  // negative percent and floor mean none; ttl 0 means default
  for (int i = 0; i < 100; ++i) budget.RecordRequest(0);
  CHECK_FALSE(budget.TryWithdraw(0));
}
