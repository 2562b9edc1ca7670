// Quantized products for any CPU (plain C integer dot products); see quant.h.
#define MOESAIC_QUANT_NS qportable
#define MOESAIC_QUANT_NAME "portable"
#define MOESAIC_QUANT_TABLE kQuantPortable
#include "quant-impl.h"
