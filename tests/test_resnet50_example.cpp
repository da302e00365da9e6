// The resnet50 program end to end, as a user runs it: flags and their errors, a short
// training run, bit-identical resume, eval, predict and infer. Uses a small ResNet-18 on a
// Fashion-MNIST subset so it runs in seconds (the dataset comes from Debian's
// dataset-fashion-mnist, which the test command installs).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

using namespace cudagrad;
namespace fs = std::filesystem;

namespace {

struct Run {
    int status;
    std::string output;  // stdout and stderr together
};

Run run(const std::string& arguments) {
    static int counter = 0;
    fs::path log = fs::temp_directory_path() / ("cudagrad_example_" + std::to_string(::getpid()) + "_" +
                                                std::to_string(counter++) + ".log");
    std::string command = std::string(CUDAGRAD_RESNET50_BINARY) + " " + arguments + " > " + log.string() + " 2>&1";
    int status = std::system(command.c_str());
    std::ifstream file(log);
    std::stringstream text;
    text << file.rdbuf();
    fs::remove(log);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::string fashion_mnist = "/usr/share/datasets/fashion-mnist";

// A quick recipe: ResNet-18 (same code path as ResNet-50), 64 training and 32 test images.
std::string tiny_training(const fs::path& output, int epochs) {
    return "train --depth 18 --epochs " + std::to_string(epochs) +
           " --batch-size 16 --train-subset 64 --test-subset 32 --lr 0.05 --warmup 0.3 --threads 2 --workers 2 --seed 5"
           // The CPU recipe on every machine: with a GPU, "auto" would pick the GPU recipe (small
           // stem), and bit-identical resume there would depend on cuDNN's algorithm choice.
           " --device cpu --output " +
           output.string();
}

fs::path scratch_folder(const std::string& name) {
    fs::path folder = fs::temp_directory_path() / ("cudagrad_example_" + std::to_string(::getpid())) / name;
    fs::remove_all(folder);
    fs::create_directories(folder);
    return folder;
}

}  // namespace

TEST_CASE("flags: --help documents every flag; bad flags and paths get clear errors") {
    Run help = run("train --help");
    CHECK(help.status == 0);
    for (const char* flag : {"--dataset", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--nesterov",
                             "--schedule", "--warmup", "--label-smoothing", "--image-size", "--stem", "--seed", "--device",
                             "--threads", "--output", "--resume"}) {
        INFO(flag);
        CHECK(contains(help.output, flag));
    }
    Run unknown = run("train --epoch 3");
    CHECK(unknown.status == 1);
    CHECK(contains(unknown.output, "unknown flag --epoch"));
    Run bad_number = run("train --lr fast");
    CHECK(contains(bad_number.output, "--lr expects a number, got 'fast'"));
    Run missing = run("eval --weights /nonexistent/model.safetensors");
    CHECK(missing.status == 1);
    CHECK(contains(missing.output, "/nonexistent/model.safetensors"));
    Run no_command = run("fly");
    CHECK(no_command.status == 2);
    CHECK(contains(no_command.output, "unknown command 'fly'"));
    Run bad_folder = run("train --dataset /nonexistent/images --max-steps 1");
    CHECK(bad_folder.status == 1);
    CHECK(contains(bad_folder.output, "/nonexistent/images"));
}

TEST_CASE("training writes metrics, curves and checkpoints, and resume is bit-identical") {
    if (!fs::exists(fashion_mnist + "/train-images-idx3-ubyte.gz")) {
        FAIL("Fashion-MNIST is missing from " + fashion_mnist + ": tools/install_deps.sh installs dataset-fashion-mnist");
    }
    fs::path straight = scratch_folder("straight");
    fs::path resumed = scratch_folder("resumed");
    Run two_epochs = run(tiny_training(straight, 2));
    INFO(two_epochs.output);
    REQUIRE(two_epochs.status == 0);
    CHECK(contains(two_epochs.output, "epoch 2: train loss"));
    CHECK(fs::exists(straight / "best.safetensors"));
    CHECK(fs::exists(straight / "curves.svg"));
    std::ifstream metrics(straight / "metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(metrics, line)) {
        CHECK(contains(line, "\"test_top1\""));
        ++lines;
    }
    CHECK(lines == 2);

    // Interrupted after the first of two epochs, then resumed with the same flags.
    Run first = run(tiny_training(resumed, 2) + " --stop-after 1");
    REQUIRE(first.status == 0);
    Run second = run(tiny_training(resumed, 2) + " --resume " + (resumed / "last.safetensors").string());
    INFO(second.output);
    REQUIRE(second.status == 0);
    CHECK(contains(second.output, "resumed from"));

    TensorFile a = load_safetensors((straight / "last.safetensors").string());
    TensorFile b = load_safetensors((resumed / "last.safetensors").string());
    REQUIRE(a.tensors.size() == b.tensors.size());
    int different = 0;
    for (auto& [name, tensor] : a.tensors) {
        REQUIRE(b.tensors.count(name) == 1);
        if (tensor.to_double_vector() != b.tensors.at(name).to_double_vector()) {
            UNSCOPED_INFO("differs: " << name);
            ++different;
        }
    }
    CHECK(different == 0);
    CHECK(a.metadata.at("step") == b.metadata.at("step"));

    // Resuming a checkpoint into a model of another depth names the tensor that does not fit.
    Run wrong_depth = run(tiny_training(scratch_folder("wrong"), 2) + " --depth 34 --resume " +
                          (resumed / "last.safetensors").string());
    CHECK(wrong_depth.status == 1);
    CHECK(contains(wrong_depth.output, "last.safetensors"));
    CHECK(contains(wrong_depth.output, "tensor 'layer"));
}

TEST_CASE("eval, predict and infer run a checkpoint") {
    if (!fs::exists(fashion_mnist + "/t10k-images-idx3-ubyte.gz")) FAIL("Fashion-MNIST is missing from " + fashion_mnist);
    fs::path folder = scratch_folder("inference");
    REQUIRE(run(tiny_training(folder, 1)).status == 0);
    std::string weights = (folder / "last.safetensors").string();

    Run evaluation = run("eval --weights " + weights + " --subset 40 --threads 2");
    INFO(evaluation.output);
    CHECK(evaluation.status == 0);
    CHECK(contains(evaluation.output, "images 40"));
    CHECK(contains(evaluation.output, "top-5"));
    CHECK(contains(evaluation.output, "Ankle boot"));
    CHECK(contains(evaluation.output, "confusion matrix"));

    std::vector<unsigned char> pixels(28 * 28);
    for (int i = 0; i < 28 * 28; ++i) pixels[i] = static_cast<unsigned char>((i * 7) % 256);
    std::string image = (folder / "sample.png").string();
    REQUIRE(stbi_write_png(image.c_str(), 28, 28, 1, pixels.data(), 28) != 0);
    Run prediction = run("predict --weights " + weights + " " + image);
    INFO(prediction.output);
    CHECK(prediction.status == 0);
    CHECK(std::count(prediction.output.begin(), prediction.output.end(), '%') == 5);
    Run bad_image = run("predict --weights " + weights + " " + weights);  // not an image
    CHECK(bad_image.status == 1);
    CHECK(contains(bad_image.output, weights));

    // infer's logits equal the model's, loaded here in-process.
    Tensor input = randn({3, 1, 28, 28}, DType::Float32);
    save_safetensors((folder / "input.safetensors").string(), {{"input", input}});
    Run inference = run("infer --weights " + weights + " --input " + (folder / "input.safetensors").string() +
                        " --output " + (folder / "logits.safetensors").string());
    INFO(inference.output);
    REQUIRE(inference.status == 0);
    Tensor logits = load_safetensors((folder / "logits.safetensors").string()).tensors.at("logits");
    nn::ResNet model({.depth = 18, .num_classes = 10, .in_channels = 1});
    load_checkpoint(weights, model);
    model.eval();
    NoGradGuard no_grad;
    CHECK(model(input).to_float_vector() == logits.to_float_vector());
}
