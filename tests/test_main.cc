// The one test main: libsodium is initialised once, before any test runs.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (sodium_init() < 0) {
    std::fputs("sodium_init failed\n", stderr);
    return 1;
  }
  return RUN_ALL_TESTS();
}
