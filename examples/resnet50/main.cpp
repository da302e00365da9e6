// resnet50: train, evaluate and run ResNets with cudagrad.
//
//   resnet50 train   [flags]          train (Fashion-MNIST by default); see `resnet50 train --help`
//   resnet50 eval    --weights W      accuracy, per-class accuracy, confusion matrix
//   resnet50 predict --weights W IMG  top-5 classes for image files
//   resnet50 infer   --weights W --input IN --output OUT   logits for a tensor in a safetensors file
#include <cstdio>
#include <string>
#include <vector>

#include <cudagrad/error.hpp>

#include "commands.hpp"

namespace {
const char* usage =
    "usage: resnet50 COMMAND [flags]\n\n"
    "commands:\n"
    "  train     train a ResNet (Fashion-MNIST by default, or an image folder)\n"
    "  eval      top-1/top-5, per-class accuracy and confusion matrix of a checkpoint\n"
    "  predict   top-5 classes with probabilities for image files\n"
    "  infer     logits for an NCHW tensor stored in a safetensors file\n\n"
    "`resnet50 COMMAND --help` lists the flags of a command.\n";
}

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    std::string command = argv[1];
    std::vector<std::string> arguments(argv + 2, argv + argc);
    try {
        if (command == "train") return resnet50::run_train(arguments);
        if (command == "eval") return resnet50::run_eval(arguments);
        if (command == "predict") return resnet50::run_predict(arguments);
        if (command == "infer") return resnet50::run_infer(arguments);
        std::fprintf(stderr, "resnet50: unknown command '%s'\n\n%s", command.c_str(), usage);
        return 2;
    } catch (const cudagrad::Error& error) {
        std::fprintf(stderr, "resnet50 %s: error: %s\n", command.c_str(), error.what());
        return 1;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "resnet50 %s: unexpected error: %s\n", command.c_str(), error.what());
        return 1;
    }
}
