// The data pipeline in one include: images and transforms, datasets (IDX files such as
// Fashion-MNIST, image folders, subsets) and the multi-threaded, reproducible DataLoader.
// Everything lives in namespace cudagrad::data.
#pragma once

#include "cudagrad/data/dataset.hpp"
#include "cudagrad/data/image.hpp"
#include "cudagrad/data/loader.hpp"
#include "cudagrad/data/transforms.hpp"
