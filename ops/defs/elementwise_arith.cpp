// The arithmetic binary ops of ops/scalar_fn.def (add ... minimum).
#include "ops/kernels/cpu/elementwise_kernels.h"

namespace kiln::ops {

#define KILN_UNARY(Id, Fn, Classes, Rule)
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits, Group) KILN_BINARY_##Group(Id, Fn, Classes, Rule, Traits)
#define KILN_BINARY_Arith(Id, Fn, Classes, Rule, Traits) KILN_DEFINE_BINARY(Id, Fn, Classes, Rule, Traits)
#define KILN_BINARY_Compare(Id, Fn, Classes, Rule, Traits)
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY
#undef KILN_BINARY_Arith
#undef KILN_BINARY_Compare

}  // namespace kiln::ops
