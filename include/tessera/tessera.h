// Umbrella header: everything a Tessera user needs.
#pragma once

#include "tessera/autodiff.h"
#include "tessera/dtype.h"
#include "tessera/error.h"
#include "tessera/nn.h"
#include "tessera/ops.h"
#include "tessera/random.h"
#include "tessera/runtime.h"
#include "tessera/shape.h"
#include "tessera/tensor.h"
