// Datasets, model loading and evaluation for the resnet50 program. See common.hpp.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include <cudagrad/autograd.hpp>
#include <cudagrad/data/transforms.hpp>
#include <cudagrad/ops.hpp>
#include <cudagrad/serialize.hpp>

#include "report.hpp"

namespace resnet50 {

using namespace cudagrad;

InputSpec input_spec_for(const std::string& dataset, int image_size) {
    check(image_size >= 8 && image_size <= 1024, "resnet50", "--image-size ", image_size, " is outside [8, 1024]");
    InputSpec spec;
    spec.dataset = dataset;
    spec.image_size = image_size;
    if (dataset == "fashion-mnist") {
        spec.class_names = data::fashion_mnist_class_names();
        return spec;
    }
    spec.channels = 3;
    spec.mean = {0.485, 0.456, 0.406};  // ImageNet statistics, as torchvision's recipes
    spec.std = {0.229, 0.224, 0.225};
    return spec;
}

data::Pipeline train_pipeline(const InputSpec& spec) {
    data::Pipeline pipeline;
    if (spec.dataset == "fashion-mnist") {
        if (spec.image_size != 28) pipeline.then(data::ResizeTo(spec.image_size, spec.image_size));
        pipeline.then(data::RandomCrop(spec.image_size, std::max(1, spec.image_size / 14)));  // pad 2 at 28 px
    } else {
        pipeline.then(data::RandomResizedCrop(spec.image_size));
    }
    pipeline.then(data::RandomHorizontalFlip()).then(data::ToTensor{}).then(data::Normalize(spec.mean, spec.std));
    return pipeline;
}

data::Pipeline test_pipeline(const InputSpec& spec) {
    data::Pipeline pipeline;
    if (spec.dataset == "fashion-mnist") {
        if (spec.image_size != 28) pipeline.then(data::ResizeTo(spec.image_size, spec.image_size));
    } else {
        pipeline.then(data::Resize(spec.image_size * 8 / 7)).then(data::CenterCrop(spec.image_size));  // 256 -> 224
    }
    pipeline.then(data::ToTensor{}).then(data::Normalize(spec.mean, spec.std));
    return pipeline;
}

std::shared_ptr<data::Dataset> open_dataset(const InputSpec& spec, const std::string& data_root, bool train,
                                            bool skip_bad_images) {
    data::Pipeline pipeline = train ? train_pipeline(spec) : test_pipeline(spec);
    if (spec.dataset == "fashion-mnist") return data::fashion_mnist(data_root, train, pipeline);
    namespace fs = std::filesystem;
    fs::path root = spec.dataset;
    fs::path split = root / (train ? "train" : "val");
    data::ImageFolderOptions options;
    options.channels = spec.channels;
    options.skip_bad_images = skip_bad_images;
    return std::make_shared<data::ImageFolderDataset>(fs::is_directory(split) ? split.string() : root.string(),
                                                      pipeline, options);
}

namespace {
std::vector<double> parse_numbers(const std::string& text) {
    std::vector<double> values;
    std::istringstream words(text);
    for (std::string word; std::getline(words, word, ',');) values.push_back(std::stod(word));
    return values;
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::istringstream words(text);
    for (std::string word; std::getline(words, word, separator);) parts.push_back(word);
    return parts;
}
}  // namespace

LoadedModel load_model(const std::string& weights_path) {
    TensorFile file = load_safetensors(weights_path);
    auto tensor = [&](const std::string& name) -> const Tensor& {
        auto found = file.tensors.find(name);
        check(found != file.tensors.end(), "resnet50", weights_path, ": no tensor '", name,
              "'; is this a ResNet checkpoint?");
        return found->second;
    };
    const Tensor& conv1 = tensor("conv1.weight");
    const Tensor& fc = tensor("fc.weight");
    int blocks_in_layer3 = 0;
    while (file.tensors.count("layer3." + std::to_string(blocks_in_layer3) + ".conv1.weight")) ++blocks_in_layer3;
    bool bottleneck = file.tensors.count("layer1.0.conv3.weight") > 0;
    int depth = 0;
    for (int candidate : {18, 34, 50, 101, 152}) {
        if (nn::resnet_stage_blocks(candidate)[2] == blocks_in_layer3 && (candidate >= 50) == bottleneck) depth = candidate;
    }
    check(depth > 0, "resnet50", weights_path, ": ", blocks_in_layer3, " blocks in layer3 match no ResNet depth");

    nn::ResNetConfig config;
    config.depth = depth;
    config.num_classes = fc.size(0);
    config.in_channels = conv1.size(1);
    config.small_stem = conv1.size(2) == 3;
    LoadedModel loaded;
    loaded.model = std::make_unique<nn::ResNet>(config);
    nn::StateDict state;
    for (auto& [name, value] : file.tensors) {
        if (name.rfind("optimizer.", 0) != 0) state[name] = value;
    }
    loaded.model->load_state_dict(state, true);
    loaded.model->eval();

    for (auto& [key, value] : file.metadata) {
        if (key.rfind("config.", 0) == 0) loaded.config[key.substr(7)] = value;
    }
    auto config_value = [&](const std::string& key, const std::string& fallback) {
        auto found = loaded.config.find(key);
        return found == loaded.config.end() ? fallback : found->second;
    };
    loaded.spec = input_spec_for(config_value("dataset", config.in_channels == 1 ? "fashion-mnist" : "folder"),
                                 std::stoi(config_value("image-size", config.in_channels == 1 ? "28" : "224")));
    if (loaded.config.count("mean")) loaded.spec.mean = parse_numbers(loaded.config["mean"]);
    if (loaded.config.count("std")) loaded.spec.std = parse_numbers(loaded.config["std"]);
    if (loaded.config.count("class-names")) loaded.spec.class_names = split(loaded.config["class-names"], '|');
    loaded.spec.channels = static_cast<int>(config.in_channels);
    return loaded;
}

std::vector<std::int64_t> top_k(const std::vector<float>& row, int k) {
    std::vector<std::int64_t> order(row.size());
    std::iota(order.begin(), order.end(), 0);
    k = std::min<int>(k, static_cast<int>(row.size()));
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](std::int64_t a, std::int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    order.resize(k);
    return order;
}

Evaluation evaluate(nn::Module& model, data::DataLoader& loader, std::int64_t num_classes, bool show_progress,
                    Device device) {
    NoGradGuard no_grad;
    model.eval();
    Evaluation result;
    result.confusion.assign(num_classes, std::vector<std::int64_t>(num_classes, 0));
    loader.start_epoch(0);
    ProgressBar progress("eval ", loader.batches_per_epoch(), loader.options().batch_size);
    double loss_sum = 0, top1 = 0, top5 = 0;
    data::Batch batch;
    while (loader.next(batch)) {
        Tensor logits = model(batch.images.to(device));
        std::int64_t rows = logits.size(0);
        loss_sum += cross_entropy(logits, batch.labels.to(device)).item() * rows;
        std::vector<float> values = logits.to_float_vector();
        std::vector<std::int64_t> labels = batch.labels.to_int64_vector();
        for (std::int64_t row = 0; row < rows; ++row) {
            std::vector<float> scores(values.begin() + row * num_classes, values.begin() + (row + 1) * num_classes);
            std::vector<std::int64_t> best = top_k(scores, 5);
            top1 += best[0] == labels[row];
            top5 += std::find(best.begin(), best.end(), labels[row]) != best.end();
            ++result.confusion[labels[row]][best[0]];
        }
        result.count += rows;
        if (show_progress) progress.update(batch.index + 1, loss_sum / result.count, 0.0);
    }
    if (show_progress) progress.finish();
    check(result.count > 0, "evaluate", "the dataset is empty");
    result.loss = loss_sum / result.count;
    result.top1 = top1 / result.count;
    result.top5 = top5 / result.count;
    return result;
}

}  // namespace resnet50
