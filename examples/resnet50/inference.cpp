// `resnet50 eval`, `predict` and `infer`: a trained model on a dataset, on image files, and
// on a raw NCHW tensor (the bridge the PyTorch parity tests use).
#include <cmath>
#include <cstdio>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/data/image.hpp>
#include <cudagrad/serialize.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "flags.hpp"

namespace resnet50 {

using namespace cudagrad;

int run_eval(std::vector<std::string> arguments) {
    Flags flags("eval", "Top-1/top-5 accuracy, per-class accuracy and the confusion matrix of a trained model.");
    flags.add("weights", "", "checkpoint or converted torchvision weights (required)");
    flags.add("dataset", "", "fashion-mnist or an image-folder root (default: the one the model was trained on)");
    flags.add("data-dir", data::default_fashion_mnist_root(), "where the Fashion-MNIST IDX files are");
    flags.add("split", "test", "test or train");
    flags.add("batch-size", "128", "images per batch");
    flags.add("subset", "0", "evaluate on this many images (0: all)");
    flags.add("workers", "2", "data-loading threads");
    flags.add("threads", "0", "CPU threads (0: all cores)");
    flags.add("device", "cpu", "cpu, cuda or auto");
    flags.add_switch("skip-bad-images", "skip unreadable images (counted) instead of stopping");
    if (!flags.parse(arguments)) return 0;
    check(!flags.text("weights").empty(), "eval", "--weights is required");
    const Device device = parse_device(flags.text("device"));
    check(flags.text("split") == "test" || flags.text("split") == "train", "eval", "--split must be test or train, got '",
          flags.text("split"), "'");
    if (flags.integer("threads") > 0) set_num_threads(static_cast<int>(flags.integer("threads")));

    LoadedModel loaded = load_model(flags.text("weights"));
    InputSpec spec = loaded.spec;
    if (!flags.text("dataset").empty()) spec.dataset = flags.text("dataset");
    auto dataset = open_dataset(spec, flags.text("data-dir"), flags.text("split") == "train", flags.enabled("skip-bad-images"));
    if (flags.integer("subset") > 0 && flags.integer("subset") < dataset->size()) {
        dataset = data::SubsetDataset::random(dataset, flags.integer("subset"), 0);
    }
    std::int64_t classes = loaded.model->config().num_classes;
    check(dataset->num_classes() == classes, "eval", "the dataset has ", dataset->num_classes(), " classes but the model ",
          classes);
    data::LoaderOptions options;
    options.batch_size = flags.integer("batch-size");
    options.shuffle = false;
    options.num_workers = static_cast<int>(flags.integer("workers"));
    data::DataLoader loader(dataset, options);
    loaded.model->to(device);
    Evaluation result = evaluate(*loaded.model, loader, classes, true, device);

    std::vector<std::string> names = dataset->class_names();
    std::printf("images %lld  loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n\nper-class accuracy:\n",
                static_cast<long long>(result.count), result.loss, 100 * result.top1, 100 * result.top5);
    for (std::int64_t c = 0; c < classes; ++c) {
        std::int64_t total = 0;
        for (std::int64_t predicted : result.confusion[c]) total += predicted;
        std::printf("  %3lld %-20s %6.2f%%  (%lld images)\n", static_cast<long long>(c),
                    c < static_cast<std::int64_t>(names.size()) ? names[c].c_str() : "",
                    total ? 100.0 * result.confusion[c][c] / total : 0.0, static_cast<long long>(total));
    }
    if (classes <= 20) {
        std::printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
        for (std::int64_t c = 0; c < classes; ++c) std::printf("%6lld", static_cast<long long>(c));
        std::printf("\n");
        for (std::int64_t t = 0; t < classes; ++t) {
            std::printf("%4lld ", static_cast<long long>(t));
            for (std::int64_t p = 0; p < classes; ++p) std::printf("%6lld", static_cast<long long>(result.confusion[t][p]));
            std::printf("\n");
        }
    }
    return 0;
}

int run_predict(std::vector<std::string> arguments) {
    Flags flags("predict", "The top-5 classes with probabilities for each image file.");
    flags.add("weights", "", "checkpoint or converted torchvision weights (required)");
    if (!flags.parse(arguments)) return 0;
    check(!flags.text("weights").empty(), "predict", "--weights is required");
    check(!flags.positional().empty(), "predict", "no image files given (usage: resnet50 predict --weights W IMAGE...)");
    LoadedModel loaded = load_model(flags.text("weights"));
    data::Pipeline pipeline = test_pipeline(loaded.spec);
    NoGradGuard no_grad;
    Generator unused_generator(0);  // the test pipeline has no random step
    for (const std::string& path : flags.positional()) {
        Tensor image = pipeline(data::load_image(path, loaded.spec.channels), unused_generator);
        Tensor probabilities = softmax(loaded.model->forward(image.reshape({1, image.size(0), image.size(1), image.size(2)})), 1);
        std::vector<float> row = probabilities.to_float_vector();
        std::printf("%s\n", path.c_str());
        for (std::int64_t c : top_k(row, 5)) {
            std::string name = c < static_cast<std::int64_t>(loaded.spec.class_names.size()) ? loaded.spec.class_names[c]
                                                                                             : "class " + std::to_string(c);
            std::printf("  %6.2f%%  %s\n", 100.0 * row[c], name.c_str());
        }
    }
    return 0;
}

int run_infer(std::vector<std::string> arguments) {
    Flags flags("infer", "Eval-mode logits for an NCHW float32 tensor named \"input\" in a safetensors file, written as\n"
                         "\"logits\" to another safetensors file.");
    flags.add("weights", "", "checkpoint or converted torchvision weights (required)");
    flags.add("input", "", "safetensors file with the tensor \"input\" (N, C, H, W) (required)");
    flags.add("output", "", "safetensors file to write \"logits\" (N, classes) to (required)");
    if (!flags.parse(arguments)) return 0;
    for (const char* name : {"weights", "input", "output"}) {
        check(!flags.text(name).empty(), "infer", "--", name, " is required");
    }
    LoadedModel loaded = load_model(flags.text("weights"));
    TensorFile input_file = load_safetensors(flags.text("input"));
    auto found = input_file.tensors.find("input");
    check(found != input_file.tensors.end(), "infer", flags.text("input"), ": no tensor named \"input\"");
    Tensor input = found->second;
    check(input.dtype() == DType::Float32 && input.dim() == 4, "infer", flags.text("input"),
          ": \"input\" must be float32 (N, C, H, W), got ", input.description());
    NoGradGuard no_grad;
    Tensor logits = loaded.model->forward(input);
    save_safetensors(flags.text("output"), {{"logits", logits}});
    std::fprintf(stderr, "infer: %s -> logits %s in %s\n", input.description().c_str(), shape_string(logits.shape()).c_str(),
                 flags.text("output").c_str());
    return 0;
}

}  // namespace resnet50
