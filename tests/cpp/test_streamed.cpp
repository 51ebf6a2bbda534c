// Gradients larger than the last-level cache (>= 32 MiB) are written with streaming stores, except
// the cache line of the target class, which the one-hot correction reads back at once. In place,
// the gradient never streams: both must give the same bits, and the reference's values.
#include "reference.hpp"

namespace {

using namespace xent_test;

// 33.6 MB of gradient for either type.
template <typename T>
constexpr Index kElements = Index{8400000} * 4 / static_cast<Index>(sizeof(T));

template <typename T>
void expect_streamed_equals_in_place(const Case<T>& c) {
    const std::vector<T> streamed = c.grad(Reduction::mean);
    Case<T> in_place = c;
    xentcpp::GradRequest<T> request;
    request.grad = in_place.input.data();
    xentcpp::grad<T>(in_place.problem(), in_place.options(Reduction::mean), request);
    EXPECT_TRUE(bitwise_equal(streamed, in_place.input));

    // A few rows against the reference: softmax minus the one-hot target, over the rows counted.
    Index last = -1;
    for (Index r : {Index{0}, c.rows / 2, c.rows - 1}) {
        if (r == last) continue;  // one row: checked once
        last = r;
        const std::vector<double> row(c.input.begin() + r * c.classes, c.input.begin() + (r + 1) * c.classes);
        const std::vector<double> p = ref_softmax(row.data(), c.classes);
        for (Index k = 0; k < c.classes; ++k) {
            const double want = (p[sz(k)] - (k == c.labels[sz(r)] ? 1.0 : 0.0)) / static_cast<double>(c.rows);
            ASSERT_TRUE(close(static_cast<double>(streamed[sz(r * c.classes + k)]) * static_cast<double>(c.rows),
                              want * static_cast<double>(c.rows), tol<T>()))
                << "row " << r << ", class " << k;
        }
    }
}

TEST(Streamed, RowsOfOneChunk) {
    const Index classes = 1000;
    expect_streamed_equals_in_place(random_index_case<float>(kElements<float> / classes, classes, 41));
    expect_streamed_equals_in_place(random_index_case<double>(kElements<double> / classes, classes, 41));
}

TEST(Streamed, OneRowSplitAcrossThreads) {
    expect_streamed_equals_in_place(random_index_case<float>(1, kElements<float>, 42));
    expect_streamed_equals_in_place(random_index_case<double>(1, kElements<double>, 42));
}

}  // namespace
