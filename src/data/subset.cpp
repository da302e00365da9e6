// SubsetDataset: a view of another dataset through a list of its indices, for quick runs on part
// of a dataset (a seeded random K, or every k-th example).
//
// Reference: torch.utils.data.Subset. random() is the first K of a seeded Fisher-Yates
// permutation, re-sorted so files are read in their on-disk order (the loader shuffles anyway).
//
// What limits the speed: nothing here; get() forwards to the base dataset.
#include <algorithm>
#include <numeric>

#include "cudagrad/data/dataset.hpp"

namespace cudagrad::data {

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<std::int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
    check(base_ != nullptr, "SubsetDataset", "base dataset is null");
    check(!indices_.empty(), "SubsetDataset", "the subset is empty (base dataset has ", base_->size(), " examples)");
    const std::int64_t base_size = base_->size();
    for (std::int64_t index : indices_) {
        check(index >= 0 && index < base_size, "SubsetDataset", "index ", index, " is out of range for a dataset of ",
              base_size, " examples");
    }
}

std::shared_ptr<SubsetDataset> SubsetDataset::random(std::shared_ptr<const Dataset> base, std::int64_t count,
                                                     std::uint64_t seed) {
    check(base != nullptr, "SubsetDataset::random", "base dataset is null");
    const std::int64_t size = base->size();
    check(count > 0 && count <= size, "SubsetDataset::random", "count must be in [1, ", size, "], got ", count);
    std::vector<std::int64_t> permutation(static_cast<std::size_t>(size));
    std::iota(permutation.begin(), permutation.end(), std::int64_t{0});
    Generator generator(seed);
    // Only the first `count` positions are needed: a partial Fisher-Yates from the front.
    for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t j = i + static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(size - i)));
        std::swap(permutation[static_cast<std::size_t>(i)], permutation[static_cast<std::size_t>(j)]);
    }
    permutation.resize(static_cast<std::size_t>(count));
    std::sort(permutation.begin(), permutation.end());
    return std::make_shared<SubsetDataset>(std::move(base), std::move(permutation));
}

std::shared_ptr<SubsetDataset> SubsetDataset::strided(std::shared_ptr<const Dataset> base, std::int64_t step,
                                                      std::int64_t start) {
    check(base != nullptr, "SubsetDataset::strided", "base dataset is null");
    check(step >= 1, "SubsetDataset::strided", "step must be at least 1, got ", step);
    check(start >= 0 && start < base->size(), "SubsetDataset::strided", "start ", start,
          " is out of range for a dataset of ", base->size(), " examples");
    std::vector<std::int64_t> indices;
    for (std::int64_t index = start; index < base->size(); index += step) indices.push_back(index);
    return std::make_shared<SubsetDataset>(std::move(base), std::move(indices));
}

Example SubsetDataset::get(std::int64_t index, Generator& generator) const {
    check(index >= 0 && index < size(), "SubsetDataset", "index ", index, " is out of range for a subset of ",
          size(), " examples");
    return base_->get(indices_[static_cast<std::size_t>(index)], generator);
}

}  // namespace cudagrad::data
