// `resnet50 train`: trains a ResNet on Fashion-MNIST or an image folder with SGD-momentum,
// logs metrics per epoch, keeps the last and the best checkpoint, draws the curves, and
// resumes bit-identically from a checkpoint (data order and augmentation depend only on the
// seed, the epoch and the sample index).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include <cudagrad/checkpoint.hpp>
#include <cudagrad/cudagrad.hpp>
#include <cudagrad/optim.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "flags.hpp"
#include "report.hpp"

namespace resnet50 {

using namespace cudagrad;

namespace {

Flags train_flags() {
    Flags flags("train", "Train a ResNet with SGD-momentum. Without flags: ResNet-50 on Fashion-MNIST with the recipe\n"
                         "for the machine (see README: a 2-core CPU run that fits in 15 minutes; the full recipe on a GPU).");
    flags.add("dataset", "fashion-mnist", "fashion-mnist, or the root of an image folder (root/<class>/*.jpg|png, or root/train + root/val)");
    flags.add("data-dir", data::default_fashion_mnist_root(), "where the Fashion-MNIST IDX files are");
    flags.add("depth", "50", "ResNet depth: 18, 34, 50, 101 or 152");
    flags.add("epochs", "auto", "epochs to train (auto: 2 on the CPU, 12 on a GPU)");
    flags.add("batch-size", "auto", "images per step (auto: 64 on the CPU, 256 on a GPU)");
    flags.add("lr", "auto", "peak learning rate (auto: 0.05 for batch 64 on the CPU, 0.1 for batch 256 on a GPU)");
    flags.add("momentum", "0.9", "SGD momentum");
    flags.add_switch("nesterov", "use Nesterov momentum (on in the default recipe; --nesterov=false turns it off)");
    flags.add("weight-decay", "5e-4", "weight decay on conv and linear weights (not on batch norm or biases)");
    flags.add("schedule", "onecycle", "learning-rate schedule: onecycle, cosine, warmup-cosine, step, multistep, constant");
    flags.add("warmup", "0.15", "fraction of the steps spent warming up (onecycle, warmup-cosine)");
    flags.add("milestones", "0.5,0.75", "multistep: fractions of the steps where the lr drops by --gamma; step: the first one is the period");
    flags.add("gamma", "0.1", "lr factor at each step/multistep milestone");
    flags.add("label-smoothing", "0", "label smoothing in the cross-entropy");
    flags.add("image-size", "auto", "input size in pixels (auto: 28 for Fashion-MNIST, 224 for folders)");
    flags.add("stem", "auto", "small (3x3/1 conv, no max-pool, for 28-64 px) or standard (7x7/2 + max-pool); auto: standard on the CPU, small on a GPU");
    flags.add("zero-init-residual", "auto", "start the last batch norm of each block at zero: true or false (auto: true on the CPU, false on a GPU)");
    flags.add("train-subset", "auto", "train on this many images (a seeded random subset; auto: 40000 on the CPU, all on a GPU; 0: all)");
    flags.add("test-subset", "0", "evaluate on this many test images (0: all)");
    flags.add("seed", "0", "seed for the weights, the data order and the augmentation");
    flags.add("device", "auto", "auto, cpu or cuda");
    flags.add("math", "fp32", "GPU matrix-product precision: fp32, tf32 or bf16 (registry.hpp)");
    flags.add("implementations", "", "GPU op implementations, e.g. conv2d:cudnn,batch_norm:cuda (CUDAGRAD_IMPL syntax)");
    flags.add("threads", "0", "CPU threads (0: all cores)");
    flags.add("workers", "2", "data-loading threads");
    flags.add("output", "runs/resnet50", "folder for checkpoints, metrics and curves");
    flags.add("metrics-format", "jsonl", "jsonl or csv");
    flags.add("resume", "", "continue from this checkpoint (normally OUTPUT/last.safetensors)");
    flags.add_switch("skip-bad-images", "skip unreadable images (counted) instead of stopping");
    flags.add("max-steps", "0", "stop each epoch after this many steps (0: no limit; for quick checks)");
    flags.add("stop-after", "0", "stop after this many epochs as if interrupted, keeping the schedule of --epochs (0: run all; for testing --resume)");
    return flags;
}

std::unique_ptr<LrSchedule> make_lr_schedule(const Flags& flags, double lr, std::int64_t total_steps) {
    const std::string name = flags.text("schedule");
    const double warmup = flags.number("warmup");
    std::vector<std::int64_t> milestones;
    std::istringstream words(flags.text("milestones"));
    for (std::string word; std::getline(words, word, ',');) {
        milestones.push_back(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::stod(word) * total_steps)));
    }
    if (name == "onecycle") return std::make_unique<OneCycleLR>(lr, total_steps, warmup);
    if (name == "cosine") return std::make_unique<CosineAnnealingLR>(lr, total_steps);
    if (name == "warmup-cosine") {
        return std::make_unique<WarmupCosine>(lr, static_cast<std::int64_t>(warmup * total_steps), total_steps);
    }
    if (name == "step") return std::make_unique<StepLR>(lr, milestones.at(0), flags.number("gamma"));
    if (name == "multistep") return std::make_unique<MultiStepLR>(lr, milestones, flags.number("gamma"));
    if (name == "constant") return std::make_unique<StepLR>(lr, total_steps + 1, 1.0);
    fail("train", "unknown --schedule '", name, "' (onecycle, cosine, warmup-cosine, step, multistep, constant)");
}

std::string join_names(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : "|") + name;
    return text;
}

std::string join_numbers(const std::vector<double>& values) {
    std::ostringstream text;
    for (std::size_t i = 0; i < values.size(); ++i) text << (i ? "," : "") << values[i];
    return text.str();
}

// Resolves the "auto" defaults for the device: the full recipe on a GPU (ANCHORS.md: small
// stem, batch 256, 12 epochs); on a 2-core CPU a recipe that fits the README's 15 minutes:
// the standard stem (the 28 px image is 7x7 after it, 16x less work than the small stem),
// batch 64, 2 epochs over a 40,000-image subset, zero-initialised residual branches for a
// stable start. It reached 85.8% test top-1 on a 2-core machine (README).
void resolve_defaults(Flags& flags, std::vector<std::string>& arguments, bool gpu) {
    auto set = [&](const std::string& name, const std::string& value) {
        if (flags.text(name) == "auto") arguments.push_back("--" + name + "=" + value);
    };
    set("epochs", gpu ? "12" : "2");
    set("batch-size", gpu ? "256" : "64");
    set("lr", gpu ? "0.1" : "0.05");
    set("stem", gpu ? "small" : "standard");
    set("image-size", flags.text("dataset") == "fashion-mnist" ? "28" : "224");
    set("train-subset", gpu ? "0" : "40000");
    set("zero-init-residual", gpu ? "false" : "true");
    if (!flags.given("nesterov")) arguments.push_back("--nesterov");
    flags.parse(arguments);
}

}  // namespace

int run_train(std::vector<std::string> arguments) {
    Flags flags = train_flags();
    if (!flags.parse(arguments)) return 0;
    if (flags.integer("threads") > 0) set_num_threads(static_cast<int>(flags.integer("threads")));
    Device device = parse_device(flags.text("device"));
    if (!flags.text("implementations").empty()) set_implementations_from_string(flags.text("implementations"));
    set_math_mode(parse_math_mode(flags.text("math")));
    resolve_defaults(flags, arguments, device.is_cuda());

    InputSpec spec = input_spec_for(flags.text("dataset"), static_cast<int>(flags.integer("image-size")));
    std::uint64_t seed = static_cast<std::uint64_t>(flags.integer("seed"));
    bool skip_bad = flags.enabled("skip-bad-images");
    std::shared_ptr<data::Dataset> train_set = open_dataset(spec, flags.text("data-dir"), true, skip_bad);
    std::shared_ptr<data::Dataset> test_set = open_dataset(spec, flags.text("data-dir"), false, skip_bad);
    spec.class_names = train_set->class_names();
    if (std::int64_t subset = flags.integer("train-subset"); subset > 0 && subset < train_set->size()) {
        train_set = data::SubsetDataset::random(train_set, subset, seed);
    }
    if (std::int64_t subset = flags.integer("test-subset"); subset > 0 && subset < test_set->size()) {
        test_set = data::SubsetDataset::random(test_set, subset, seed + 1);
    }
    check(test_set->num_classes() == train_set->num_classes(), "train", "the test split has ", test_set->num_classes(),
          " classes but the training split ", train_set->num_classes());

    data::LoaderOptions loader_options;
    loader_options.batch_size = flags.integer("batch-size");
    loader_options.seed = seed;
    loader_options.num_workers = static_cast<int>(flags.integer("workers"));
    loader_options.drop_last = true;  // equal batches: batch norm statistics and timings stay comparable
    loader_options.pin_memory = device.is_cuda();  // batch copies to the GPU overlap the previous step
    data::DataLoader train_loader(train_set, loader_options);
    loader_options.shuffle = false;
    loader_options.drop_last = false;
    data::DataLoader test_loader(test_set, loader_options);

    nn::ResNetConfig config;
    config.depth = static_cast<int>(flags.integer("depth"));
    config.num_classes = train_set->num_classes();
    config.in_channels = spec.channels;
    config.small_stem = flags.text("stem") == "small";
    check(config.small_stem || flags.text("stem") == "standard", "train", "--stem must be small or standard, got '",
          flags.text("stem"), "'");
    config.zero_init_residual = flags.text("zero-init-residual") == "true";
    check(config.zero_init_residual || flags.text("zero-init-residual") == "false", "train",
          "--zero-init-residual must be true or false, got '", flags.text("zero-init-residual"), "'");
    config.seed = seed;
    nn::ResNet model(config);
    model.to(device);  // before the optimiser takes the parameters: to() replaces the tensors

    nn::WeightDecaySplit split = nn::split_for_weight_decay(model);
    SgdOptions sgd_options;
    sgd_options.lr = flags.number("lr");
    sgd_options.momentum = flags.number("momentum");
    sgd_options.nesterov = flags.enabled("nesterov");
    sgd_options.weight_decay = flags.number("weight-decay");
    SGD optimizer({named_parameter_group(split.decay), named_parameter_group(split.no_decay, 0.0)}, sgd_options);

    const std::int64_t epochs = flags.integer("epochs");
    const std::int64_t max_steps = flags.integer("max-steps");
    std::int64_t steps_per_epoch = train_loader.batches_per_epoch();
    if (max_steps > 0) steps_per_epoch = std::min(steps_per_epoch, max_steps);
    check(steps_per_epoch > 0, "train", "the training set (", train_set->size(), " images) is smaller than one batch of ",
          loader_options.batch_size);
    auto schedule = make_lr_schedule(flags, sgd_options.lr, epochs * steps_per_epoch);

    namespace fs = std::filesystem;
    fs::path output = flags.text("output");
    fs::create_directories(output);
    MetricsLog metrics((output / (flags.text("metrics-format") == "csv" ? "metrics.csv" : "metrics.jsonl")).string());

    CheckpointInfo info;
    std::map<std::string, std::string> config_values = flags.all_values();
    config_values["class-names"] = join_names(spec.class_names);
    config_values["mean"] = join_numbers(spec.mean);
    config_values["std"] = join_numbers(spec.std);
    std::vector<EpochMetrics> history;
    if (!flags.text("resume").empty()) {
        info = load_checkpoint(flags.text("resume"), model, &optimizer);
        std::fprintf(stderr, "resumed from %s at epoch %lld, step %lld\n", flags.text("resume").c_str(),
                     static_cast<long long>(info.epoch), static_cast<long long>(info.step));
    } else if (fs::exists(metrics.path())) {
        fs::remove(metrics.path());  // a fresh run starts a fresh log
    }
    info.config = config_values;

    std::fprintf(stderr, "cudagrad resnet50 train\n%s\nmodel: ResNet-%d, %lld parameters, %s stem, %d px, %lld classes\n"
                         "data: %s, %lld train / %lld test images, batch %lld, %lld steps per epoch, %d workers\n"
                         "optimiser: SGD lr %g momentum %g%s weight decay %g, %s\n",
                 describe_devices().c_str(), config.depth, static_cast<long long>(model.parameter_count()),
                 config.small_stem ? "small" : "standard", spec.image_size, static_cast<long long>(config.num_classes),
                 spec.dataset.c_str(), static_cast<long long>(train_set->size()), static_cast<long long>(test_set->size()),
                 static_cast<long long>(loader_options.batch_size), static_cast<long long>(steps_per_epoch),
                 loader_options.num_workers, sgd_options.lr, sgd_options.momentum,
                 sgd_options.nesterov ? " (nesterov)" : "", sgd_options.weight_decay, schedule->describe().c_str());

    const double label_smoothing = flags.number("label-smoothing");
    const std::int64_t read_every = device.is_cuda() ? 20 : 1;
    const std::int64_t last_epoch = flags.integer("stop-after") > 0 ? std::min(epochs, flags.integer("stop-after")) : epochs;
    for (std::int64_t epoch = info.epoch; epoch < last_epoch; ++epoch) {
        auto epoch_start = std::chrono::steady_clock::now();
        model.train();
        train_loader.start_epoch(epoch);
        ProgressBar progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), steps_per_epoch,
                             loader_options.batch_size);
        double loss_sum = 0.0, wait_before = train_loader.wait_seconds();
        std::int64_t steps = 0, skipped_before = train_loader.skipped();
        // The losses of the steps since the last read-back, summed where they were computed:
        // reading a GPU loss waits for the GPU, so it happens every `read_every` steps only.
        Tensor window_loss;
        std::int64_t window_steps = 0;
        double window_wait = 0.0;
        data::Batch batch;
        while (steps < steps_per_epoch && train_loader.next(batch)) {
            double waited = train_loader.wait_seconds();
            optimizer.set_lr(schedule->lr_at(info.step));
            Tensor loss = cross_entropy(model(batch.images.to(device)), batch.labels.to(device), label_smoothing);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            ++info.step;
            ++steps;
            {
                NoGradGuard no_grad;
                window_loss = window_loss.defined() ? add(window_loss, loss.detach()) : loss.detach();
            }
            ++window_steps;
            window_wait += train_loader.wait_seconds() - waited;
            if (window_steps == read_every || steps == steps_per_epoch) {
                const double window_sum = window_loss.item();
                check(std::isfinite(window_sum), "train", "the loss became ", window_sum / window_steps,
                      " in the steps up to ", info.step, "; lower --lr");
                loss_sum += window_sum;
                progress.update_window(steps, window_sum, window_steps, window_wait);
                window_loss = Tensor();
                window_steps = 0;
                window_wait = 0.0;
            }
        }
        progress.finish();
        double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();

        Evaluation evaluation = evaluate(model, test_loader, config.num_classes, false, device);
        EpochMetrics m;
        m.epoch = epoch + 1;
        m.train_loss = loss_sum / std::max<std::int64_t>(steps, 1);
        m.test_loss = evaluation.loss;
        m.test_top1 = evaluation.top1;
        m.test_top5 = evaluation.top5;
        m.learning_rate = optimizer.lr();
        m.images_per_second = steps * loader_options.batch_size / train_seconds;
        m.epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        m.data_wait_seconds = train_loader.wait_seconds() - wait_before;
        m.skipped_images = train_loader.skipped() - skipped_before;
        metrics.append(m);
        history.push_back(m);
        std::fprintf(stderr, "epoch %lld: train loss %.4f, test loss %.4f, top-1 %.2f%%, top-5 %.2f%%, %.1f img/s, %.0f s\n",
                     static_cast<long long>(m.epoch), m.train_loss, m.test_loss, 100 * m.test_top1, 100 * m.test_top5,
                     m.images_per_second, m.epoch_seconds);

        info.epoch = epoch + 1;
        info.rng_state = default_generator().state();
        bool best = evaluation.top1 > info.best_top1;
        if (best) info.best_top1 = evaluation.top1;
        save_checkpoint((output / "last.safetensors").string(), model, &optimizer, info);
        if (best) save_checkpoint((output / "best.safetensors").string(), model, nullptr, info);
        write_curves_svg((output / "curves.svg").string(), history);
    }
    std::fprintf(stderr, "done: best test top-1 %.2f%%; checkpoints, %s and curves.svg in %s\n", 100 * info.best_top1,
                 fs::path(metrics.path()).filename().c_str(), output.c_str());
    return 0;
}

}  // namespace resnet50
