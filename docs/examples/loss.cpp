// The C++ API page's example (docs/cpp.md): the mean loss and its gradient of two rows of three
// logits, then softmax along the rows. scripts/run_tests.sh compiles it against the core, runs it and
// compares what it prints with docs/examples/loss.out.
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "xentcpp/functions.hpp"
#include "xentcpp/xentcpp.hpp"

int main() {
    const float logits[2][3] = {{2.0f, 1.0f, 0.1f}, {0.5f, 2.5f, 0.3f}};
    const std::int64_t labels[2] = {0, 1};

    xentcpp::Problem<float> problem;
    problem.input = &logits[0][0];
    problem.rows = 2;
    problem.classes = 3;
    problem.labels = labels;
    xentcpp::Options<float> options;  // PyTorch's defaults: mean, ignore_index -100, no weight

    float grad[2][3];
    const double loss = xentcpp::value_and_grad(problem, options, nullptr, &grad[0][0]);
    std::printf("loss %.4f\n", loss);
    for (const auto& row : grad) std::printf("grad %+.4f %+.4f %+.4f\n", row[0], row[1], row[2]);

    float probabilities[2][3];
    xentcpp::softmax(&logits[0][0], xentcpp::Columns{2, 3, 1}, &probabilities[0][0]);
    std::printf("softmax %.4f %.4f %.4f\n", probabilities[0][0], probabilities[0][1], probabilities[0][2]);

    const std::int64_t bad[2] = {0, 3};  // a label out of range: an exception, nothing written
    problem.labels = bad;
    try {
        xentcpp::loss(problem, options, nullptr);
    } catch (const std::out_of_range& error) {
        std::printf("out_of_range: %s\n", error.what());
    }
    return 0;
}
