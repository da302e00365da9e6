// The subcommands of the resnet50 program; each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace resnet50 {
int run_train(std::vector<std::string> arguments);
int run_eval(std::vector<std::string> arguments);
int run_predict(std::vector<std::string> arguments);
int run_infer(std::vector<std::string> arguments);
}  // namespace resnet50
