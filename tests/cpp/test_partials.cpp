// Cross-entropy from shards of classes (xentcpp/partials.hpp): the records of any split of the class
// axis, merged in any order and tree shape, give the whole row's loss (the core's own, and the float64
// reference) and each shard's gradient; empty records merge as nothing; non-finite values, confident
// rows, bad labels and records that miss a shard behave as the contract says.
#include <algorithm>
#include <functional>
#include <numeric>
#include <stdexcept>

#include <xentcpp/partials.hpp>

#include "reference.hpp"

namespace {

using namespace xent_test;
using xentcpp::PartialOptions;
using xentcpp::RowPartial;

// Options of one test case, beside the Case's own (weight, ignore_index, smoothing).
struct Extra {
    double z_loss = 0.0;
    double softcap = 0.0;
};

template <typename T>
PartialOptions<T> options_of(const Case<T>& c, const Extra& extra) {
    PartialOptions<T> o;
    o.weight = c.weight.empty() ? nullptr : c.weight.data();
    o.ignore_index = c.ignore_index;
    o.label_smoothing = c.smoothing;
    o.z_loss = extra.z_loss;
    o.softcap = extra.softcap;
    return o;
}

// Columns [start, start + width) of a rows × classes buffer, as their own C-contiguous shard.
template <typename T>
std::vector<T> columns(const std::vector<T>& a, Index rows, Index classes, Index start, Index width) {
    std::vector<T> out(sz(rows * width));
    for (Index r = 0; r < rows; ++r) {
        std::copy_n(a.begin() + r * classes + start, width, out.begin() + r * width);
    }
    return out;
}

// The shard [start, start + width) of a case, with its own copies of the logits and targets.
template <typename T>
struct Shard {
    std::vector<T> logits, probs;
    xentcpp::ClassShard<T> view;

    Shard(const Case<T>& c, Index start, Index width)
        : logits(columns(c.input, c.rows, c.classes, start, width)),
          probs(c.probs.empty() ? std::vector<T>{} : columns(c.probs, c.rows, c.classes, start, width)) {
        view.logits = logits.data();
        view.rows = c.rows;
        view.width = width;
        view.class_start = start;
        view.classes = c.classes;
        view.labels = c.labels.empty() ? nullptr : c.labels.data();
        view.probs = probs.empty() ? nullptr : probs.data();
    }
};

template <typename T>
std::vector<RowPartial> partials_of(const Case<T>& c, Index start, Index width, const PartialOptions<T>& o) {
    Shard<T> shard(c, start, width);
    std::vector<RowPartial> out(sz(c.rows));
    xentcpp::row_partials<T>(shard.view, o, out.data());
    return out;
}

std::vector<RowPartial> merge(const std::vector<RowPartial>& a, const std::vector<RowPartial>& b) {
    std::vector<RowPartial> out(a.size());
    xentcpp::merge_partials(a.data(), b.data(), static_cast<Index>(a.size()), out.data());
    return out;
}

// Shard boundaries 0 = cuts[0] < ... < cuts.back() = classes.
std::vector<Index> one_class_each(Index classes) {
    std::vector<Index> cuts(sz(classes + 1));
    std::iota(cuts.begin(), cuts.end(), Index{0});
    return cuts;
}
std::vector<std::vector<Index>> splits(Index classes) {
    return {{0, classes}, one_class_each(classes), {0, 3, 4, 11, classes}, {0, classes - 1, classes}};
}

template <typename T>
std::vector<std::vector<RowPartial>> shards_of(const Case<T>& c, const std::vector<Index>& cuts,
                                               const PartialOptions<T>& o) {
    std::vector<std::vector<RowPartial>> out;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) out.push_back(partials_of(c, cuts[k], cuts[k + 1] - cuts[k], o));
    return out;
}

std::vector<RowPartial> fold(const std::vector<std::vector<RowPartial>>& shards) {
    std::vector<RowPartial> total = shards[0];
    for (std::size_t k = 1; k < shards.size(); ++k) total = merge(total, shards[k]);
    return total;
}

std::vector<double> losses_of(const std::vector<RowPartial>& merged, const Case<double>& c,
                              const PartialOptions<double>& o, xentcpp::PartialSums* sums = nullptr) {
    std::vector<double> out(merged.size(), kUnwritten<double>);
    const xentcpp::PartialSums s = xentcpp::loss_from_partials(
        merged.data(), c.rows, c.classes, c.labels.empty() ? nullptr : c.labels.data(), nullptr, o, out.data(), nullptr);
    if (sums) *sums = s;
    return out;
}

// The whole-row core's per-row losses and gradient (reduction sum: upstream 1 per row).
template <typename T>
xentcpp::Options<T> core_options(const Case<T>& c, const Extra& extra, Reduction r) {
    xentcpp::Options<T> o = c.options(r);
    o.z_loss = extra.z_loss;
    o.softcap = extra.softcap;
    return o;
}
template <typename T>
std::vector<T> core_row_losses(const Case<T>& c, const Extra& extra) {
    std::vector<T> out(sz(c.rows), kUnwritten<T>);
    xentcpp::compute<T>(c.problem(), core_options(c, extra, Reduction::none), out.data(), nullptr);
    return out;
}
template <typename T>
std::vector<T> core_grad(const Case<T>& c, const Extra& extra) {
    std::vector<T> g(c.input.size(), kUnwritten<T>);
    xentcpp::GradRequest<T> request;
    request.grad = g.data();
    xentcpp::compute<T>(c.problem(), core_options(c, extra, Reduction::sum), nullptr, &request);
    return g;
}

template <typename T>
Case<T> weighted_case(std::uint64_t seed) {
    Case<T> c = random_index_case<T>(9, 23, seed);
    Rng rng(seed + 1);
    for (Index k = 0; k < c.classes; ++k) c.weight.push_back(static_cast<T>(rng.uniform(0.25, 2.0)));
    c.labels[2] = c.ignore_index;
    return c;
}

template <typename T>
Case<T> probs_case(std::uint64_t seed) {
    Case<T> c = random_index_case<T>(7, 23, seed);
    c.labels.clear();
    c.probs = cast<T>(random_soft_targets(c.rows, c.classes, seed + 2));
    return c;
}

// The cases every split is tried on: plain labels, weights with smoothing and an ignored row, z-loss,
// softcap, probability targets (smoothed and weighted).
template <typename T>
std::vector<std::pair<Case<T>, Extra>> cases() {
    std::vector<std::pair<Case<T>, Extra>> out;
    out.push_back({random_index_case<T>(9, 23, 3), Extra{}});
    Case<T> w = weighted_case<T>(5);
    w.smoothing = 0.15;
    out.push_back({w, Extra{}});
    out.push_back({random_index_case<T>(9, 23, 7), Extra{1e-2, 0.0}});
    out.push_back({random_index_case<T>(9, 23, 9), Extra{0.0, 2.5}});
    Case<T> p = probs_case<T>(11);
    p.smoothing = 0.3;
    p.weight = weighted_case<T>(13).weight;
    out.push_back({p, Extra{}});
    return out;
}

template <typename T>
void expect_any_split_matches_the_whole_row() {
    int case_index = 0;
    for (const auto& [c, extra] : cases<T>()) {
        SCOPED_TRACE(::testing::Message() << "case " << case_index++);
        const PartialOptions<T> o = options_of(c, extra);
        const Case<double> d = c.template as<double>();  // the loss takes double weights (exact)
        const std::vector<T> core = core_row_losses(c, extra);
        for (const std::vector<Index>& cuts : splits(c.classes)) {
            SCOPED_TRACE(::testing::Message() << cuts.size() - 1 << " shards");
            const std::vector<double> got = losses_of(fold(shards_of(c, cuts, o)), d, options_of(d, extra));
            EXPECT_TRUE(all_close(got, widen(core), tol<T>()));
            if (extra.softcap == 0.0 && extra.z_loss == 0.0) {
                EXPECT_TRUE(all_close(got, c.ref_rows(), tol<T>()));
            }
        }
    }
}

TEST(Partials, AnySplitOfTheClassesGivesTheWholeRowsLossFloat) { expect_any_split_matches_the_whole_row<float>(); }
TEST(Partials, AnySplitOfTheClassesGivesTheWholeRowsLossDouble) { expect_any_split_matches_the_whole_row<double>(); }

// Every binary tree over the shards in the given order (Catalan many), each leaf once.
void trees(const std::vector<std::vector<RowPartial>>& leaves, std::size_t lo, std::size_t hi,
           const std::function<void(const std::vector<RowPartial>&)>& visit) {
    if (hi - lo == 1) return visit(leaves[lo]);
    for (std::size_t mid = lo + 1; mid < hi; ++mid) {
        trees(leaves, lo, mid, [&](const std::vector<RowPartial>& left) {
            trees(leaves, mid, hi, [&](const std::vector<RowPartial>& right) {
                visit(merge(left, right));
                visit(merge(right, left));
            });
        });
    }
}

TEST(Partials, MergesInEveryOrderAndTreeShapeAgreeToRounding) {
    Case<double> c = weighted_case<double>(17);
    c.smoothing = 0.2;
    const PartialOptions<double> o = options_of(c, Extra{1e-3, 0.0});
    const std::vector<std::vector<RowPartial>> leaves = shards_of(c, {0, 2, 7, 8, 15, 23}, o);
    const std::vector<double> first = losses_of(fold(leaves), c, o);
    std::vector<std::size_t> order(leaves.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::size_t merged = 0;
    do {
        std::vector<std::vector<RowPartial>> permuted;
        for (std::size_t k : order) permuted.push_back(leaves[k]);
        trees(permuted, 0, permuted.size(), [&](const std::vector<RowPartial>& total) {
            ++merged;
            EXPECT_TRUE(all_close(losses_of(total, c, o), first, 1e-14));
            for (std::size_t i = 0; i < total.size(); ++i) {
                EXPECT_EQ(total[i].classes, c.classes);
                EXPECT_EQ(total[i].targets, c.labels[i] == c.ignore_index ? 0 : 1);
            }
        });
    } while (std::next_permutation(order.begin(), order.end()));
    EXPECT_EQ(merged, std::size_t{120 * 14 * 16});  // 5! orders, 14 shapes, both sides of each of 4 merges
}

template <typename T>
void expect_shard_gradients_match_the_whole_row() {
    int case_index = 0;
    for (const auto& [c, extra] : cases<T>()) {
        SCOPED_TRACE(::testing::Message() << "case " << case_index++);
        const PartialOptions<T> o = options_of(c, extra);
        const std::vector<T> whole = core_grad(c, extra);
        for (const std::vector<Index>& cuts : splits(c.classes)) {
            SCOPED_TRACE(::testing::Message() << cuts.size() - 1 << " shards");
            const std::vector<RowPartial> merged = fold(shards_of(c, cuts, o));
            for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
                const Index start = cuts[k], width = cuts[k + 1] - start;
                Shard<T> shard(c, start, width);
                std::vector<T> g(shard.logits.size(), kUnwritten<T>);
                xentcpp::grad_from_partials<T>(shard.view, merged.data(), o, xentcpp::PartialScales{}, g.data());
                EXPECT_TRUE(all_close(g, widen(columns(whole, c.rows, c.classes, start, width)), tol<T>()))
                    << "shard at " << start;
            }
        }
    }
}

TEST(Partials, EachShardsGradientIsTheWholeRowsFloat) { expect_shard_gradients_match_the_whole_row<float>(); }
TEST(Partials, EachShardsGradientIsTheWholeRowsDouble) { expect_shard_gradients_match_the_whole_row<double>(); }

TEST(Partials, GradientInPlaceAndScaledPerRow) {
    const Case<double> c = weighted_case<double>(19);
    const PartialOptions<double> o = options_of(c, Extra{});
    const std::vector<RowPartial> merged = fold(shards_of(c, {0, 10, 23}, o));
    std::vector<double> per_row(sz(c.rows));
    for (Index i = 0; i < c.rows; ++i) per_row[sz(i)] = 0.5 + static_cast<double>(i);
    const std::vector<double> whole = c.grad(Reduction::none, 1.0, per_row);
    Shard<double> shard(c, 10, 13);
    xentcpp::PartialScales scales;
    scales.scale_rows = per_row.data();
    xentcpp::grad_from_partials<double>(shard.view, merged.data(), o, scales, shard.logits.data());
    EXPECT_TRUE(all_close(shard.logits, columns(whole, c.rows, c.classes, 10, 13), tol<double>()));
}

TEST(Partials, AnEmptyRecordMergesAsNothing) {
    const Case<double> c = weighted_case<double>(23);
    const std::vector<RowPartial> a = partials_of(c, 0, 23, options_of(c, Extra{}));
    const std::vector<RowPartial> empty(a.size(), RowPartial{-kInf, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0});
    for (const std::vector<RowPartial>& m : {merge(a, empty), merge(empty, a)}) {
        for (std::size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(std::memcmp(&m[i], &a[i], sizeof(RowPartial)), 0) << "row " << i;
        }
    }
}

// A confident row: the target holds the max and the others are far below, so the loss is
// log1p(r) with r = sum_{c != y} exp(x_c - x_y) tiny; split or whole, every digit is kept.
TEST(Partials, AConfidentRowKeepsFullRelativePrecision) {
    Case<double> c;
    c.rows = 1;
    c.classes = 40;
    c.input.assign(40, -45.0);
    c.input[17] = 0.0;
    c.labels = {17};
    const double want = std::log1p(39.0 * std::exp(-45.0));  // 1.1e-18: 1 + r rounds to 1 in double
    const PartialOptions<double> o = options_of(c, Extra{});
    for (const std::vector<Index>& cuts : splits(c.classes)) {
        const std::vector<double> got = losses_of(fold(shards_of(c, cuts, o)), c, o);
        EXPECT_NEAR(got[0] / want, 1.0, 1e-13);
    }
}

// NaN, +inf and -inf in one shard, and a row of -inf: each row's loss is what the whole row gives.
TEST(Partials, NonFiniteValuesGiveTheWholeRowsResults) {
    Case<double> c = random_index_case<double>(6, 12, 29);
    const double inf = kInf;
    c.input[0 * 12 + 5] = kNaN;
    c.input[1 * 12 + 9] = inf;
    c.input[2 * 12 + 1] = -inf;  // one masked class: a finite loss
    for (Index k = 0; k < 12; ++k) c.input[sz(3 * 12 + k)] = -inf;  // no softmax: NaN
    for (Index k = 0; k < 6; ++k) c.input[sz(4 * 12 + k)] = -inf;    // a whole shard of -inf: finite
    c.labels = {0, 1, 2, 3, 7, 4};
    const std::vector<double> whole = core_row_losses(c, Extra{});
    const PartialOptions<double> o = options_of(c, Extra{});
    for (const std::vector<Index>& cuts : {std::vector<Index>{0, 6, 12}, one_class_each(12)}) {
        const std::vector<double> got = losses_of(fold(shards_of(c, cuts, o)), c, o);
        EXPECT_TRUE(all_close(got, whole, 1e-12));
    }
    EXPECT_TRUE(std::isnan(whole[0]) && std::isnan(whole[1]) && std::isnan(whole[3]));
    EXPECT_TRUE(std::isfinite(whole[2]) && std::isfinite(whole[4]));
}

TEST(Partials, SumsOfRowShardsAddUpToTheWholeBatch) {
    Case<double> c = weighted_case<double>(31);
    c.smoothing = 0.1;
    const PartialOptions<double> o = options_of(c, Extra{0.01, 0.0});
    const std::vector<RowPartial> merged = fold(shards_of(c, {0, 12, 23}, o));
    xentcpp::PartialSums whole;
    losses_of(merged, c, o, &whole);
    const Index half = 4;
    const auto shard = [&](Index begin, Index end) {
        return xentcpp::loss_from_partials(merged.data() + begin, end - begin, c.classes, c.labels.data() + begin,
                                           nullptr, o, nullptr, nullptr);
    };
    const xentcpp::PartialSums parts = shard(0, half) + shard(half, c.rows);
    EXPECT_NEAR(parts.loss, whole.loss, 1e-12 * std::fabs(whole.loss));
    EXPECT_EQ(parts.weight, whole.weight);
    EXPECT_EQ(parts.rows, 8.0);  // one row ignored
    xentcpp::Options<double> mean = c.options(Reduction::mean);
    mean.z_loss = 0.01;
    EXPECT_TRUE(close(parts.loss / parts.weight + parts.z_loss / parts.rows,
                      xentcpp::compute<double>(c.problem(), mean, nullptr, nullptr).loss, 1e-12));
    const xentcpp::PartialSums counted =
        xentcpp::count_targets(c.labels.data(), c.rows, c.classes, c.ignore_index, widen(c.weight).data(), nullptr);
    EXPECT_EQ(counted.weight, whole.weight);
    EXPECT_EQ(counted.rows, whole.rows);
}

TEST(Partials, ABadLabelIsReportedWithItsRowBeforeAnythingIsWritten) {
    Case<double> c = random_index_case<double>(5, 8, 37);
    c.labels[3] = 8;
    const PartialOptions<double> o = options_of(c, Extra{});
    Shard<double> shard(c, 0, 4);
    std::vector<RowPartial> out(5, RowPartial{1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7, 8});
    try {
        xentcpp::row_partials<double>(shard.view, o, out.data());
        ADD_FAILURE() << "no exception";
    } catch (const std::out_of_range& e) {
        EXPECT_NE(std::string(e.what()).find("target[3] = 8"), std::string::npos) << e.what();
    }
    EXPECT_EQ(out[0].classes, 7);  // untouched
    std::vector<double> g(shard.logits.size(), 1.0);
    EXPECT_THROW(xentcpp::grad_from_partials<double>(shard.view, out.data(), o, {}, g.data()), std::out_of_range);
    EXPECT_THROW(xentcpp::loss_from_partials(out.data(), 5, 8, c.labels.data(), nullptr, o, nullptr, nullptr),
                 std::out_of_range);
}

TEST(Partials, RecordsThatMissOrRepeatAShardAreRefused) {
    const Case<double> c = random_index_case<double>(4, 10, 41);
    const PartialOptions<double> o = options_of(c, Extra{});
    const std::vector<RowPartial> a = partials_of(c, 0, 6, o), b = partials_of(c, 6, 4, o);
    const auto loss = [&](const std::vector<RowPartial>& p) {
        return xentcpp::loss_from_partials(p.data(), 4, 10, c.labels.data(), nullptr, o, nullptr, nullptr);
    };
    EXPECT_NO_THROW(loss(merge(a, b)));
    EXPECT_THROW(loss(a), std::invalid_argument);              // a shard missing
    EXPECT_THROW(loss(merge(merge(a, b), b)), std::invalid_argument);  // a shard twice
    try {
        loss(a);
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("partials[0] cover 6 of the 10 classes and the target class"), std::string::npos) << e.what();
    }
}

TEST(Partials, OptionsAndSizesAreChecked) {
    const Case<double> c = random_index_case<double>(3, 6, 43);
    PartialOptions<double> o = options_of(c, Extra{});
    std::vector<RowPartial> out(3);
    Shard<double> shard(c, 2, 4);
    const auto partials = [&](const xentcpp::ClassShard<double>& view, const PartialOptions<double>& options) {
        xentcpp::row_partials<double>(view, options, out.data());
    };
    xentcpp::ClassShard<double> past = shard.view;
    past.class_start = 3;  // [3, 7) does not fit in 6 classes
    EXPECT_THROW(partials(past, o), std::invalid_argument);
    xentcpp::ClassShard<double> both = shard.view;
    both.probs = shard.logits.data();
    EXPECT_THROW(partials(both, o), std::invalid_argument);
    PartialOptions<double> bad = o;
    bad.label_smoothing = 1.5;
    EXPECT_THROW(partials(shard.view, bad), std::invalid_argument);
    bad = o;
    bad.softcap = -1.0;
    EXPECT_THROW(partials(shard.view, bad), std::invalid_argument);
    const std::vector<double> nan_weight(6, kNaN);
    bad = o;
    bad.weight = nan_weight.data();
    EXPECT_THROW(partials(shard.view, bad), std::invalid_argument);
}

}  // namespace
