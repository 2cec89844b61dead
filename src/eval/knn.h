#pragma once
// Exact k-nearest neighbours by brute force in Euclidean space (for cells in PCA space: a few
// thousand to tens of thousands of points in ~50 dimensions, where exact search through blocked
// matrix products beats any index). Distances come from |a|^2 + |b|^2 - 2 a.b in double precision,
// one block of query rows at a time, so memory stays bounded.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "eval/dense_matrix.h"

namespace lingshu {

struct KnnGraph {
  int64_t n = 0;  // query points
  int k = 0;
  std::vector<int32_t> neighbors;    // n * k reference rows, nearest first
  std::vector<double> sq_distances;  // n * k squared distances, increasing

  std::span<const int32_t> neighbors_of(int64_t i) const {
    return {neighbors.data() + i * k, static_cast<size_t>(k)};
  }
  std::span<const double> sq_distances_of(int64_t i) const {
    return {sq_distances.data() + i * k, static_cast<size_t>(k)};
  }
};

// The k nearest other rows of every row of `points` (a point is never its own neighbour).
// Requires 1 <= k < points.rows; throws std::invalid_argument otherwise.
KnnGraph knn_within(const DenseMatrix& points, int k);

// The k nearest rows of `reference` for every row of `queries`. Requires 1 <= k <= reference.rows.
KnnGraph knn_between(const DenseMatrix& queries, const DenseMatrix& reference, int k);

// Calls `visit(begin, end, block)` for consecutive row ranges of `a`, where block holds the squared
// Euclidean distances (clamped at 0) from rows [begin, end) of `a` to every row of `b`, row-major
// ((end - begin) x b.rows). Used by kNN and by kernel statistics (MMD) over all pairs.
using DistanceBlockVisitor = std::function<void(int64_t begin, int64_t end, std::span<const double> block)>;
void for_each_distance_block(const DenseMatrix& a, const DenseMatrix& b, const DistanceBlockVisitor& visit);

// The sum over every pair (row of a, row of b) of f(their squared Euclidean distance), in parallel
// (kernel means for MMD, mean distances for the energy distance).
double sum_over_pairs(const DenseMatrix& a, const DenseMatrix& b, const std::function<double(double)>& f,
                      int threads = 0);

}  // namespace lingshu
