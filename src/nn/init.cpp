#include "tessera/nn/init.h"

#include <cmath>

#include "tessera/error.h"

namespace tessera::nn::init {

std::pair<int64_t, int64_t> fans(IntList shape) {
  if (shape.size() < 2)
    raise<ValueError>("nn.init", "fan in/out need a shape of rank >= 2, got rank " + std::to_string(shape.size()));
  int64_t receptive = 1;
  for (size_t i = 2; i < shape.size(); ++i) receptive *= shape.begin()[i];
  return {shape.begin()[1] * receptive, shape.begin()[0] * receptive};
}

double gain(Nonlinearity nl, double param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid:
      return 1.0;
    case Nonlinearity::ReLU:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU:
      return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::Tanh:
      return 5.0 / 3.0;
  }
  return 1.0;
}

Tensor uniform(IntList shape, double low, double high, Generator& gen) {
  return tessera::uniform(shape, low, high, gen);
}
Tensor normal(IntList shape, double mean, double std, Generator& gen) { return tessera::normal(shape, mean, std, gen); }
Tensor zeros(IntList shape) { return tessera::zeros(shape); }
Tensor ones(IntList shape) { return tessera::ones(shape); }

namespace {
double fan_of(IntList shape, FanMode mode) {
  auto [in, out] = fans(shape);
  int64_t f = mode == FanMode::FanIn ? in : out;
  if (f <= 0) raise<ValueError>("nn.init", "fan is 0 for a tensor with no elements");
  return static_cast<double>(f);
}
}  // namespace

Tensor kaiming_uniform(IntList shape, double a, FanMode mode, Nonlinearity nl, Generator& gen) {
  double bound = gain(nl, a) * std::sqrt(3.0 / fan_of(shape, mode));
  return tessera::uniform(shape, -bound, bound, gen);
}

Tensor kaiming_normal(IntList shape, double a, FanMode mode, Nonlinearity nl, Generator& gen) {
  return tessera::normal(shape, 0.0, gain(nl, a) / std::sqrt(fan_of(shape, mode)), gen);
}

Tensor xavier_uniform(IntList shape, double g, Generator& gen) {
  auto [in, out] = fans(shape);
  double bound = g * std::sqrt(6.0 / static_cast<double>(in + out));
  return tessera::uniform(shape, -bound, bound, gen);
}

Tensor xavier_normal(IntList shape, double g, Generator& gen) {
  auto [in, out] = fans(shape);
  return tessera::normal(shape, 0.0, g * std::sqrt(2.0 / static_cast<double>(in + out)), gen);
}

}  // namespace tessera::nn::init
