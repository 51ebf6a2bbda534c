// The Kernels table of one SIMD target, filled by name: each family assigns its own entries
// (families.hpp), so that an entry cannot land in another's place; tests/cpp/test_targets.cpp checks
// that none is left empty.
#include "families.hpp"

#define XENTCPP_STR2(x) #x
#define XENTCPP_STR(x) XENTCPP_STR2(x)

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

template <typename T>
Kernels<T> make_kernels() {
    Kernels<T> k{};
    k.target = XENTCPP_STR(XENTCPP_TARGET);
    add_row_stats(k);
    add_few_classes(k);
    add_softmax_family(k);
    add_binary(k);
    add_information(k);
    add_conversions(k);
    add_labels(k);
    return k;
}

}  // namespace

const Kernels<float>& float_kernels() {
    static const Kernels<float> table = make_kernels<float>();
    return table;
}

const Kernels<double>& double_kernels() {
    static const Kernels<double> table = make_kernels<double>();
    return table;
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
