// Flag parsing for the resnet50 program. See flags.hpp.
#include "flags.hpp"

#include <cstdio>
#include <sstream>

#include <cudagrad/error.hpp>

namespace resnet50 {

using cudagrad::check;
using cudagrad::fail;

void Flags::add(const std::string& name, const std::string& default_value, const std::string& help) {
    order_.push_back(name);
    flags_[name] = Flag{default_value, help, false};
}

void Flags::add_switch(const std::string& name, const std::string& help) {
    order_.push_back(name);
    flags_[name] = Flag{"false", help, true};
}

bool Flags::parse(const std::vector<std::string>& arguments) {
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        const std::string& argument = arguments[i];
        if (argument == "--help" || argument == "-h") {
            std::fputs(help().c_str(), stdout);
            return false;
        }
        if (argument.rfind("--", 0) != 0) {
            positional_.push_back(argument);
            continue;
        }
        std::string name = argument.substr(2);
        std::string value;
        bool has_value = false;
        if (auto equals = name.find('='); equals != std::string::npos) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
            has_value = true;
        }
        auto found = flags_.find(name);
        check(found != flags_.end(), command_.c_str(), "unknown flag --", name, " (see ", command_, " --help)");
        if (found->second.is_switch) {
            check(!has_value || value == "true" || value == "false", command_.c_str(), "--", name,
                  " is a switch and takes no value, got '", value, "'");
            found->second.value = has_value ? value : "true";
        } else {
            if (!has_value) {
                check(i + 1 < arguments.size(), command_.c_str(), "--", name, " needs a value");
                value = arguments[++i];
            }
            found->second.value = value;
        }
        given_[name] = true;
    }
    return true;
}

const Flags::Flag& Flags::find(const std::string& name) const {
    auto found = flags_.find(name);
    if (found == flags_.end()) fail(command_.c_str(), "internal: no flag --", name);
    return found->second;
}

std::string Flags::text(const std::string& name) const { return find(name).value; }

std::int64_t Flags::integer(const std::string& name) const {
    const std::string& value = find(name).value;
    try {
        std::size_t used = 0;
        long long parsed = std::stoll(value, &used);
        if (used == value.size()) return parsed;
    } catch (const std::exception&) {
    }
    fail(command_.c_str(), "--", name, " expects an integer, got '", value, "'");
}

double Flags::number(const std::string& name) const {
    const std::string& value = find(name).value;
    try {
        std::size_t used = 0;
        double parsed = std::stod(value, &used);
        if (used == value.size()) return parsed;
    } catch (const std::exception&) {
    }
    fail(command_.c_str(), "--", name, " expects a number, got '", value, "'");
}

bool Flags::enabled(const std::string& name) const { return find(name).value == "true"; }

std::map<std::string, std::string> Flags::all_values() const {
    std::map<std::string, std::string> values;
    for (const auto& [name, flag] : flags_) values[name] = flag.value;
    return values;
}

std::string Flags::help() const {
    std::ostringstream text;
    text << "usage: resnet50 " << command_ << " [flags]" << (command_ == "predict" ? " IMAGE..." : "") << "\n\n"
         << summary_ << "\n\nflags:\n";
    for (const std::string& name : order_) {
        const Flag& flag = flags_.at(name);
        std::string left = "  --" + name + (flag.is_switch ? "" : " VALUE");
        text << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << flag.help;
        if (!flag.is_switch && !flag.value.empty()) text << " (default: " << flag.value << ")";
        text << '\n';
    }
    return text.str();
}

}  // namespace resnet50
