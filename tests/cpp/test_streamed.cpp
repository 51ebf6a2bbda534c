// Gradients larger than the caches (>= 16 MiB) are written with streaming stores, each row's while
// the next row's statistics are computed (one row late), with the partial vectors at row ends
// joined across rows. In place, the gradient never streams: both must give the same bits, and the
// reference's values, for every target kind and option, any alignment of the output, and any
// thread count.
#include "reference.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using namespace xent_test;

// 33.6 MB of gradient for either type: streamed.
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

// The streamed gradient written `offset` elements past a 64-byte boundary, and the in-place one.
template <typename T>
void expect_streamed_equals_in_place(const Case<T>& c, Reduction r, const std::vector<T>& per_row, Index offset) {
    std::vector<T> buffer(c.input.size() + 64, kUnwritten<T>);
    const auto misalignment = static_cast<Index>(reinterpret_cast<std::uintptr_t>(buffer.data()) % 64) /
                              static_cast<Index>(sizeof(T));
    T* const out = buffer.data() + (64 / static_cast<Index>(sizeof(T)) - misalignment) + offset;
    xentcpp::GradRequest<T> request;
    request.grad = out;
    request.grad_output_rows = per_row.empty() ? nullptr : per_row.data();
    xentcpp::grad<T>(c.problem(), c.options(r), request);
    const std::vector<T> streamed(out, out + c.input.size());
    if (r != Reduction::none && per_row.empty()) {  // the loss does not depend on the gradient's path
        const double fused = xentcpp::value_and_grad<T>(c.problem(), c.options(r), nullptr, out);
        const double alone = c.loss(r);
        EXPECT_EQ(std::memcmp(&fused, &alone, sizeof fused), 0) << fused << " vs " << alone;
        EXPECT_TRUE(bitwise_equal(streamed, std::vector<T>(out, out + c.input.size())));
    }

    Case<T> in_place = c;
    request.grad = in_place.input.data();
    xentcpp::grad<T>(in_place.problem(), in_place.options(r), request);
    EXPECT_TRUE(bitwise_equal(streamed, in_place.input)) << "offset " << offset;
}

// Ignored rows and rows of -inf (NaN gradients) break the chain of rows written one late; rows
// whose upstream gradient is 0 switch the kernel variant (the deferred row is written on its own).
template <typename T>
Case<T> with_breaks(Case<T> c) {
    for (Index r = 0; r < c.rows; r += 5) c.labels[sz(r)] = c.ignore_index;
    for (Index r = 3; r < c.rows; r += 101) {
        std::fill(c.input.begin() + r * c.classes, c.input.begin() + (r + 1) * c.classes,
                  -std::numeric_limits<T>::infinity());
    }
    return c;
}

TEST(Streamed, EveryOptionAnyAlignment) {
    const Index classes = 1000;  // 4 000-byte rows: half of them start inside a cache line
    const Case<float> plain = random_index_case<float>(kElements<float> / classes, classes, 43);
    Case<float> weighted = with_breaks(plain);
    weighted.weight = cast<float>(random_probabilities(classes, 0.5, 2.0, 44));
    weighted.smoothing = 0.1;
    std::vector<float> per_row(sz(plain.rows), 0.5f);
    for (Index r = 0; r < plain.rows; r += 7) per_row[sz(r)] = 0.0f;
    Case<float> soft = plain;
    soft.labels.clear();
    soft.probs = cast<float>(random_soft_targets(plain.rows, classes, 45));
    for (Index offset : {Index{0}, Index{1}, Index{8}, Index{15}}) {
        expect_streamed_equals_in_place(plain, Reduction::mean, {}, offset);
        expect_streamed_equals_in_place(weighted, Reduction::none, per_row, offset);
    }
    expect_streamed_equals_in_place(weighted, Reduction::sum, {}, 3);
    expect_streamed_equals_in_place(soft, Reduction::mean, {}, 5);
    soft.weight = weighted.weight;
    expect_streamed_equals_in_place(soft, Reduction::none, per_row, 0);
}

TEST(Streamed, RowsOfSeveralBlocksOnAnyThreadCount) {
    // Blocks of 2 048 elements; rows of 5 000 floats start on a line every other row, rows of 70 001
    // one in sixteen.
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
#endif
        const Case<float> c = with_breaks(random_index_case<float>(kElements<float> / 5000, 5000, 46));
        expect_streamed_equals_in_place(c, Reduction::mean, {}, 0);
        expect_streamed_equals_in_place(c, Reduction::mean, {}, 3);
        const Case<double> d = with_breaks(random_index_case<double>(kElements<double> / 1001, 1001, 47));
        expect_streamed_equals_in_place(d, Reduction::sum, {}, 1);
        // Rows of three segments of 32 768 classes, each segment's gradient written late.
        const Case<float> e = with_breaks(random_index_case<float>(kElements<float> / 70001, 70001, 48));
        expect_streamed_equals_in_place(e, Reduction::mean, {}, 7);
#ifdef _OPENMP
    }
    omp_set_num_threads(saved);
#endif
}

TEST(Streamed, RowsOfOneSegment) {
    const Index classes = 1000;
    expect_streamed_equals_in_place(random_index_case<float>(kElements<float> / classes, classes, 41));
    expect_streamed_equals_in_place(random_index_case<double>(kElements<double> / classes, classes, 41));
}

TEST(Streamed, OneRowSplitAcrossThreads) {
    expect_streamed_equals_in_place(random_index_case<float>(1, kElements<float>, 42));
    expect_streamed_equals_in_place(random_index_case<double>(1, kElements<double>, 42));
}

}  // namespace
