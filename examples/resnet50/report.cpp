// Progress, metrics and curves for the resnet50 trainer. See report.hpp.
#include "report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <cudagrad/error.hpp>

namespace resnet50 {

ProgressBar::ProgressBar(std::string label, std::int64_t total_steps, std::int64_t images_per_step)
    : label_(std::move(label)),
      total_steps_(std::max<std::int64_t>(total_steps, 1)),
      images_per_step_(images_per_step),
      terminal_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(std::int64_t step, double loss, double data_wait_seconds) {
    update_window(step, loss, 1, data_wait_seconds);
}

void ProgressBar::update_window(std::int64_t step, double loss_sum, std::int64_t steps, double data_wait_seconds) {
    steps_done_ += steps;
    loss_sum_ += loss_sum;
    data_wait_ += data_wait_seconds;
    auto now = std::chrono::steady_clock::now();
    std::int64_t decile = step * 10 / total_steps_;
    bool due = terminal_ ? now - last_draw_ > std::chrono::milliseconds(200) : decile != last_printed_decile_;
    if (due && step < total_steps_) {  // the last step is drawn by finish()
        last_printed_decile_ = decile;
        last_draw_ = now;
        draw(step, false);
    }
}

void ProgressBar::finish() {
    draw(steps_done_, true);
}

void ProgressBar::draw(std::int64_t step, bool final_line) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double images_per_second = elapsed > 0 ? steps_done_ * images_per_step_ / elapsed : 0.0;
    double eta = steps_done_ > 0 ? elapsed / steps_done_ * (total_steps_ - step) : 0.0;
    constexpr int width = 24;
    int filled = static_cast<int>(width * std::min<std::int64_t>(step, total_steps_) / total_steps_);
    std::fprintf(stderr, "%s%s [%s%s] %lld/%lld loss %.4f  %.1f img/s  ETA %.0fs  data-wait %.1fs%s",
                 terminal_ ? "\r" : "", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(step),
                 static_cast<long long>(total_steps_), steps_done_ ? loss_sum_ / steps_done_ : 0.0,
                 images_per_second, final_line ? elapsed : eta, data_wait_, terminal_ && !final_line ? "" : "\n");
    std::fflush(stderr);
}

void MetricsLog::append(const EpochMetrics& m) const {
    bool csv = path_.size() >= 4 && path_.compare(path_.size() - 4, 4, ".csv") == 0;
    bool new_file = !std::ifstream(path_).good();
    std::ofstream out(path_, std::ios::app);
    cudagrad::check(out.good(), "MetricsLog", "cannot open ", path_, " for writing");
    if (csv) {
        if (new_file) {
            out << "epoch,train_loss,test_loss,test_top1,test_top5,lr,images_per_second,epoch_seconds,"
                   "data_wait_seconds,skipped_images\n";
        }
        out << m.epoch << ',' << m.train_loss << ',' << m.test_loss << ',' << m.test_top1 << ',' << m.test_top5
            << ',' << m.learning_rate << ',' << m.images_per_second << ',' << m.epoch_seconds << ','
            << m.data_wait_seconds << ',' << m.skipped_images << '\n';
    } else {
        out << "{\"epoch\": " << m.epoch << ", \"train_loss\": " << m.train_loss << ", \"test_loss\": " << m.test_loss
            << ", \"test_top1\": " << m.test_top1 << ", \"test_top5\": " << m.test_top5 << ", \"lr\": " << m.learning_rate
            << ", \"images_per_second\": " << m.images_per_second << ", \"epoch_seconds\": " << m.epoch_seconds
            << ", \"data_wait_seconds\": " << m.data_wait_seconds << ", \"skipped_images\": " << m.skipped_images
            << "}\n";
    }
}

namespace {
// One panel: a polyline per series over epochs, axes with a few labelled ticks.
void draw_panel(std::ostringstream& svg, double left, double top, double width, double height,
                const std::string& title, const std::vector<std::pair<std::string, std::vector<double>>>& series,
                const std::vector<std::int64_t>& epochs, double low, double high) {
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c"};
    if (high <= low) high = low + 1.0;
    double first = static_cast<double>(epochs.front()), last = static_cast<double>(epochs.back());
    if (last <= first) last = first + 1.0;
    auto x_of = [&](double epoch) { return left + (epoch - first) / (last - first) * width; };
    auto y_of = [&](double value) { return top + height - (value - low) / (high - low) * height; };
    svg << "<text x='" << left + width / 2 << "' y='" << top - 10 << "' text-anchor='middle' font-size='14'>" << title
        << "</text>\n";
    svg << "<rect x='" << left << "' y='" << top << "' width='" << width << "' height='" << height
        << "' fill='none' stroke='#888'/>\n";
    for (int tick = 0; tick <= 4; ++tick) {
        double value = low + (high - low) * tick / 4.0;
        svg << "<text x='" << left - 6 << "' y='" << y_of(value) + 4 << "' text-anchor='end' font-size='11'>"
            << std::round(value * 1000) / 1000 << "</text>\n";
    }
    svg << "<text x='" << left << "' y='" << top + height + 16 << "' font-size='11'>epoch " << epochs.front()
        << "</text><text x='" << left + width << "' y='" << top + height + 16 << "' text-anchor='end' font-size='11'>"
        << epochs.back() << "</text>\n";
    for (std::size_t s = 0; s < series.size(); ++s) {
        svg << "<polyline fill='none' stroke-width='2' stroke='" << colours[s % 3] << "' points='";
        for (std::size_t i = 0; i < epochs.size(); ++i) svg << x_of(double(epochs[i])) << ',' << y_of(series[s].second[i]) << ' ';
        svg << "'/>\n";
        svg << "<text x='" << left + 8 << "' y='" << top + 16 + 14 * s << "' font-size='12' fill='" << colours[s % 3]
            << "'>" << series[s].first << "</text>\n";
    }
}
}  // namespace

void write_curves_svg(const std::string& path, const std::vector<EpochMetrics>& history) {
    if (history.empty()) return;
    std::vector<std::int64_t> epochs;
    std::vector<double> train_loss, test_loss, top1, top5;
    for (const EpochMetrics& m : history) {
        epochs.push_back(m.epoch);
        train_loss.push_back(m.train_loss);
        test_loss.push_back(m.test_loss);
        top1.push_back(m.test_top1 * 100);
        top5.push_back(m.test_top5 * 100);
    }
    double loss_high = std::max(*std::max_element(train_loss.begin(), train_loss.end()),
                                *std::max_element(test_loss.begin(), test_loss.end()));
    double accuracy_low = std::min(*std::min_element(top1.begin(), top1.end()), 100.0);
    std::ostringstream svg;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='360' font-family='sans-serif'>\n"
        << "<rect width='900' height='360' fill='white'/>\n";
    draw_panel(svg, 70, 40, 340, 270, "loss", {{"train", train_loss}, {"test", test_loss}}, epochs, 0.0, loss_high * 1.05);
    draw_panel(svg, 520, 40, 340, 270, "test accuracy (%)", {{"top-1", top1}, {"top-5", top5}}, epochs,
               std::floor(accuracy_low / 10) * 10, 100.0);
    svg << "</svg>\n";
    std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary);
        cudagrad::check(out.good(), "write_curves_svg", "cannot write ", temporary);
        out << svg.str();
    }
    cudagrad::check(std::rename(temporary.c_str(), path.c_str()) == 0, "write_curves_svg", "cannot rename ", temporary,
                    " to ", path);
}

}  // namespace resnet50
