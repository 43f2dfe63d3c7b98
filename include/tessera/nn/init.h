// Parameter initializers (torch.nn.init's formulas), drawing from a Generator (default: the
// process-wide ts::default_generator(), seeded with ts::manual_seed). Each returns a new float32
// tensor of the given shape. Fans follow PyTorch: fan_in = shape[1] * receptive field,
// fan_out = shape[0] * receptive field (receptive field = product of shape[2:]); shapes of rank
// < 2 throw ValueError where a fan is needed.
#pragma once

#include "tessera/ops.h"
#include "tessera/random.h"

namespace tessera::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, ReLU, LeakyReLU, Tanh, Sigmoid };

/// (fan_in, fan_out) of a weight shape.
TESSERA_API std::pair<int64_t, int64_t> fans(IntList shape);
/// The recommended gain of torch.nn.init.calculate_gain (param: LeakyReLU's negative slope).
TESSERA_API double gain(Nonlinearity nl, double param = 0.01);

TESSERA_API Tensor uniform(IntList shape, double low, double high, Generator& gen = default_generator());
TESSERA_API Tensor normal(IntList shape, double mean = 0.0, double std = 1.0, Generator& gen = default_generator());
TESSERA_API Tensor zeros(IntList shape);
TESSERA_API Tensor ones(IntList shape);
/// U(-b, b) with b = gain(nl, a) * sqrt(3 / fan). Linear and Conv layers use a = sqrt(5),
/// LeakyReLU, FanIn: b = 1 / sqrt(fan_in).
TESSERA_API Tensor kaiming_uniform(IntList shape, double a = 0.0, FanMode mode = FanMode::FanIn,
                                   Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& gen = default_generator());
/// N(0, std^2) with std = gain(nl, a) / sqrt(fan).
TESSERA_API Tensor kaiming_normal(IntList shape, double a = 0.0, FanMode mode = FanMode::FanIn,
                                  Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& gen = default_generator());
/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
TESSERA_API Tensor xavier_uniform(IntList shape, double gain = 1.0, Generator& gen = default_generator());
/// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
TESSERA_API Tensor xavier_normal(IntList shape, double gain = 1.0, Generator& gen = default_generator());

}  // namespace tessera::nn::init
