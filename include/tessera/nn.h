// The neural-network library: modules, layers, attention, losses, initializers, reference models.
#pragma once

#include "tessera/nn/attention.h"
#include "tessera/nn/init.h"
#include "tessera/nn/layers.h"
#include "tessera/nn/losses.h"
#include "tessera/nn/models.h"
#include "tessera/nn/module.h"
