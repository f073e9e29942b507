// Kiln's public API in one include.
#pragma once

#include "autodiff/check.h"
#include "autodiff/custom_gradient.h"
#include "autodiff/tape.h"
#include "ops/ops.h"
#include "ops/ragged.h"
#include "ops/strings.h"
#include "ops/variable.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/errors.h"
#include "runtime/npy.h"
#include "runtime/parallel.h"
#include "runtime/printing.h"
#include "runtime/shape.h"
#include "runtime/string_tensor.h"
#include "runtime/tensor.h"
