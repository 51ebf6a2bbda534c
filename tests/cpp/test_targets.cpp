// The SIMD target queries of the public header: what this build compiled, what this CPU runs, and
// the one in use, consistent with each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "simd/kernels.hpp"
#include "simd/probes.hpp"
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

// Every entry of every table of every target is filled (the families fill theirs by name; one that a
// new entry forgot stays null). The tables hold pointers only, so they are read as an array of them.
template <typename Table>
bool every_entry_set(const Table& table) {
    static_assert(sizeof(Table) % sizeof(void*) == 0, "a table holds pointers only");
    std::array<const void*, sizeof(Table) / sizeof(void*)> entries{};
    std::memcpy(entries.data(), &table, sizeof table);
    return std::all_of(entries.begin(), entries.end(), [](const void* entry) { return entry != nullptr; });
}

TEST(Targets, EveryTableIsComplete) {
    using namespace xentcpp::simd;
    for (const Target t : {Target::avx512, Target::avx2, Target::baseline}) {
        if (!target_supported(t)) continue;
        EXPECT_TRUE(every_entry_set(kernels_for<float>(t))) << target_name(t);
        EXPECT_TRUE(every_entry_set(kernels_for<double>(t))) << target_name(t);
        EXPECT_TRUE(every_entry_set(bandwidth_probes_for(t))) << target_name(t);
        EXPECT_TRUE(every_entry_set(vector_math_hooks_for<float>(t))) << target_name(t);
        EXPECT_TRUE(every_entry_set(vector_math_hooks_for<double>(t))) << target_name(t);
        EXPECT_STREQ(kernels_for<float>(t).target, target_name(t));
    }
}

}  // namespace
