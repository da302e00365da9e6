// What the trainer shows and writes: the per-epoch progress bar, the metrics log (JSON lines
// or CSV), and the training curves as an SVG image.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace resnet50 {

// One line redrawn in place on a terminal ("\r"); on a pipe or file (CI), a line every 10%.
class ProgressBar {
public:
    ProgressBar(std::string label, std::int64_t total_steps, std::int64_t images_per_step);
    // Called after each step with the step's loss and the seconds the step waited for data.
    void update(std::int64_t step, double loss, double data_wait_seconds);
    // The same for several steps at once (`steps` steps ending at `step`, their losses summed):
    // on a GPU the loss is read back every few steps, not every step, to avoid a host sync.
    void update_window(std::int64_t step, double loss_sum, std::int64_t steps, double data_wait_seconds);
    void finish();

private:
    void draw(std::int64_t step, bool final_line);

    std::string label_;
    std::int64_t total_steps_, images_per_step_, steps_done_ = 0, last_printed_decile_ = -1;
    double loss_sum_ = 0.0, data_wait_ = 0.0;
    bool terminal_;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

struct EpochMetrics {
    std::int64_t epoch = 0;
    double train_loss = 0, test_loss = 0, test_top1 = 0, test_top5 = 0, learning_rate = 0;
    double images_per_second = 0, epoch_seconds = 0, data_wait_seconds = 0;
    std::int64_t skipped_images = 0;
};

// Appends one record per epoch to metrics.jsonl or metrics.csv (by extension).
class MetricsLog {
public:
    explicit MetricsLog(std::string path) : path_(std::move(path)) {}
    void append(const EpochMetrics& metrics) const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Loss (left) and top-1/top-5 accuracy (right) per epoch, as a standalone SVG file.
void write_curves_svg(const std::string& path, const std::vector<EpochMetrics>& history);

}  // namespace resnet50
