// Runtime dispatch: which compiled SIMD target this CPU runs, chosen once per process.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels.hpp"
#include "probes.hpp"
#include "xentcpp/xentcpp.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// Each target's tables (csrc/simd/target/families.hpp, compiled in that target's namespace).
#define XENTCPP_DECLARE_TARGET(ns)                       \
    namespace xentcpp::simd::ns {                        \
    const Kernels<float>& float_kernels();               \
    const Kernels<double>& double_kernels();             \
    const BandwidthProbes& bandwidth_probes();           \
    template <typename T>                                \
    const VectorMathHooks<T>& vector_math_hooks();       \
    }

XENTCPP_DECLARE_TARGET(baseline)
#if defined(XENTCPP_HAVE_AVX2)
XENTCPP_DECLARE_TARGET(avx2)
#endif
#if defined(XENTCPP_HAVE_AVX512)
XENTCPP_DECLARE_TARGET(avx512)
#endif

namespace xentcpp::simd {

constexpr Target kTargets[] = {Target::avx512, Target::avx2, Target::baseline};

namespace {

#if defined(__x86_64__) || defined(__i386__)
// F16C (CPUID leaf 1, ECX bit 29) read directly: some compilers' __builtin_cpu_supports (Clang 14)
// do not know the name.
bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}
#endif

bool cpu_runs(Target target) {
#if defined(__x86_64__) || defined(__i386__)
    switch (target) {
        case Target::avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("fma") && cpu_has_f16c();
        case Target::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
        case Target::baseline:
            return true;
    }
    return false;
#else
    return target == Target::baseline;
#endif
}

Target choose() {
    const char* forced = std::getenv("XENTCPP_SIMD");
    if (forced == nullptr || *forced == '\0') {
        for (const Target t : kTargets) {
            if (target_supported(t)) return t;
        }
    }
    const std::string name(forced);
    for (const Target t : kTargets) {
        if (name != target_name(t)) continue;
        if (!target_supported(t)) {
            throw std::invalid_argument("XENTCPP_SIMD=" + name + ": this " +
                                        (target_compiled(t) ? "CPU cannot run it" : "build does not include it"));
        }
        return t;
    }
    throw std::invalid_argument("XENTCPP_SIMD=" + name + " is not a target: use avx512, avx2 or baseline");
}

}  // namespace

const char* target_name(Target target) {
    switch (target) {
        case Target::avx512: return "avx512";
        case Target::avx2: return "avx2";
        case Target::baseline: return "baseline";
    }
    return "?";
}

bool target_compiled(Target target) {
    switch (target) {
#if defined(XENTCPP_HAVE_AVX512)
        case Target::avx512: return true;
#endif
#if defined(XENTCPP_HAVE_AVX2)
        case Target::avx2: return true;
#endif
        case Target::baseline: return true;
        default: return false;
    }
}

bool target_supported(Target target) { return target_compiled(target) && cpu_runs(target); }

Target active_target() {
    static const Target target = choose();
    return target;
}

// What `tables` returns for the target: the target's own namespace, for each target compiled in.
#if defined(XENTCPP_HAVE_AVX512)
#define XENTCPP_CASE_AVX512(expression) \
    case Target::avx512: {              \
        namespace ns = avx512;          \
        return expression;              \
    }
#else
#define XENTCPP_CASE_AVX512(expression)
#endif
#if defined(XENTCPP_HAVE_AVX2)
#define XENTCPP_CASE_AVX2(expression) \
    case Target::avx2: {              \
        namespace ns = avx2;          \
        return expression;            \
    }
#else
#define XENTCPP_CASE_AVX2(expression)
#endif
#define XENTCPP_FOR_TARGET(target, expression) \
    switch (target) {                          \
        XENTCPP_CASE_AVX512(expression)        \
        XENTCPP_CASE_AVX2(expression)          \
        default: {                             \
            namespace ns = baseline;           \
            return expression;                 \
        }                                      \
    }

template <>
const Kernels<float>& kernels_for<float>(Target target) {
    XENTCPP_FOR_TARGET(target, ns::float_kernels())
}

template <>
const Kernels<double>& kernels_for<double>(Target target) {
    XENTCPP_FOR_TARGET(target, ns::double_kernels())
}

const BandwidthProbes& bandwidth_probes_for(Target target) { XENTCPP_FOR_TARGET(target, ns::bandwidth_probes()) }

template <typename T>
const VectorMathHooks<T>& vector_math_hooks_for(Target target) {
    XENTCPP_FOR_TARGET(target, ns::vector_math_hooks<T>())
}

template const VectorMathHooks<float>& vector_math_hooks_for<float>(Target);
template const VectorMathHooks<double>& vector_math_hooks_for<double>(Target);

template <typename T>
const Kernels<T>& kernels() {
    static const Kernels<T>& chosen = kernels_for<T>(active_target());
    return chosen;
}

const BandwidthProbes& bandwidth_probes() {
    static const BandwidthProbes& chosen = bandwidth_probes_for(active_target());
    return chosen;
}

template const Kernels<float>& kernels<float>();
template const Kernels<double>& kernels<double>();

}  // namespace xentcpp::simd

const char* xentcpp::simd_target() { return simd::target_name(simd::active_target()); }

namespace {

// The target called `name`, if there is one.
bool named_target(const char* name, xentcpp::simd::Target& target) {
    for (const xentcpp::simd::Target t : xentcpp::simd::kTargets) {
        if (std::string(name) == xentcpp::simd::target_name(t)) {
            target = t;
            return true;
        }
    }
    return false;
}

}  // namespace

bool xentcpp::simd_target_supported(const char* name) {
    simd::Target t{};
    return named_target(name, t) && simd::target_supported(t);
}

bool xentcpp::simd_target_compiled(const char* name) {
    simd::Target t{};
    return named_target(name, t) && simd::target_compiled(t);
}
