// The SIMD target queries of the public header: what this build compiled, what this CPU runs, and
// the one in use, consistent with each other.
#include <gtest/gtest.h>

#include <string>

#include "xentcpp/xentcpp.hpp"

namespace {

const char* const kNames[] = {"avx512", "avx2", "baseline"};

TEST(Targets, BaselineIsAlwaysCompiledAndRunnable) {
    EXPECT_TRUE(xentcpp::simd_target_compiled("baseline"));
    EXPECT_TRUE(xentcpp::simd_target_supported("baseline"));
}

TEST(Targets, UnknownNamesAreNeither) {
    for (const char* name : {"", "neon", "AVX2", "avx2 ", "sse2"}) {
        EXPECT_FALSE(xentcpp::simd_target_compiled(name)) << name;
        EXPECT_FALSE(xentcpp::simd_target_supported(name)) << name;
    }
}

TEST(Targets, SupportedImpliesCompiled) {
    for (const char* name : kNames) {
        if (xentcpp::simd_target_supported(name)) {
            EXPECT_TRUE(xentcpp::simd_target_compiled(name)) << name;
        }
    }
}

TEST(Targets, TheOneInUseIsSupported) {
    const std::string in_use = xentcpp::simd_target();
    EXPECT_TRUE(xentcpp::simd_target_supported(in_use.c_str())) << in_use;
    EXPECT_TRUE(xentcpp::simd_target_compiled(in_use.c_str())) << in_use;
}

TEST(Targets, X86BuildsCompileEveryTarget) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    for (const char* name : kNames) EXPECT_TRUE(xentcpp::simd_target_compiled(name)) << name;
#else
    EXPECT_FALSE(xentcpp::simd_target_compiled("avx2"));  // other architectures build the baseline only
#endif
}

}  // namespace
