// A small command-line flag parser: each subcommand declares its flags (name, default, help),
// parses "--name value" / "--name=value" / "--switch", and rejects anything unknown with a
// message that names the flag. --help prints every flag with its default.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace resnet50 {

class Flags {
public:
    Flags(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

    void add(const std::string& name, const std::string& default_value, const std::string& help);
    void add_switch(const std::string& name, const std::string& help);  // false unless given

    // Parses arguments; those not starting with "--" are collected as positional().
    // Returns false when --help was given (the help text is then printed).
    bool parse(const std::vector<std::string>& arguments);

    std::string text(const std::string& name) const;
    std::int64_t integer(const std::string& name) const;  // errors name the flag and the value
    double number(const std::string& name) const;
    bool enabled(const std::string& name) const;
    bool given(const std::string& name) const { return given_.count(name) > 0; }
    const std::vector<std::string>& positional() const { return positional_; }
    std::map<std::string, std::string> all_values() const;  // for the checkpoint's config
    std::string help() const;

private:
    struct Flag {
        std::string value, help;
        bool is_switch = false;
    };
    const Flag& find(const std::string& name) const;

    std::string command_, summary_;
    std::vector<std::string> order_;
    std::map<std::string, Flag> flags_;
    std::map<std::string, bool> given_;
    std::vector<std::string> positional_;
};

}  // namespace resnet50
