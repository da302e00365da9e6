// Pieces the resnet50 subcommands share: datasets and their transforms, building a model for a
// weights file, and evaluation (top-1/top-5, per-class accuracy, confusion matrix).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <cudagrad/data/dataset.hpp>
#include <cudagrad/data/loader.hpp>
#include <cudagrad/nn/resnet.hpp>

namespace resnet50 {

// What the model expects of its input, stored in checkpoints as config.* entries so eval,
// predict and infer rebuild the same preprocessing.
struct InputSpec {
    std::string dataset = "fashion-mnist";  // or an image-folder path
    int image_size = 28;
    int channels = 1;
    std::vector<double> mean{0.2860}, std{0.3530};
    std::vector<std::string> class_names;
};

// The normalisation for a dataset: Fashion-MNIST's own statistics, else ImageNet's.
InputSpec input_spec_for(const std::string& dataset, int image_size);

// Training transforms: random crop with padding + flip for Fashion-MNIST (resized first when
// image_size != 28); random-resized-crop + flip for image folders. Test transforms: resize
// (+ center crop for folders) only. Both end with ToTensor and Normalize.
cudagrad::data::Pipeline train_pipeline(const InputSpec& spec);
cudagrad::data::Pipeline test_pipeline(const InputSpec& spec);

// Fashion-MNIST from data_root (train or test split) or an image folder (dataset/train and
// dataset/val, or dataset itself when it has no such split folders).
std::shared_ptr<cudagrad::data::Dataset> open_dataset(const InputSpec& spec, const std::string& data_root, bool train,
                                                      bool skip_bad_images);

// Builds the ResNet a weights file describes (depth from the blocks in layer3, classes from
// fc.weight, input channels and stem from conv1.weight) and loads it. Works for our
// checkpoints and for converted torchvision files.
struct LoadedModel {
    std::unique_ptr<cudagrad::nn::ResNet> model;
    InputSpec spec;
    std::map<std::string, std::string> config;
};
LoadedModel load_model(const std::string& weights_path);

struct Evaluation {
    double loss = 0, top1 = 0, top5 = 0;
    std::int64_t count = 0;
    std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class]
};
// Runs the model (already on `device`) over the loader's batches, copying each batch there.
Evaluation evaluate(cudagrad::nn::Module& model, cudagrad::data::DataLoader& loader, std::int64_t num_classes,
                    bool show_progress, cudagrad::Device device = cudagrad::Device::cpu());

// Top-k class indices of one row of logits, best first.
std::vector<std::int64_t> top_k(const std::vector<float>& row, int k);

}  // namespace resnet50
