/* cpu/ops_internal.h: the cpu backend's entries for the layer and MoE ops (internal). */
#ifndef DSK_CPU_OPS_INTERNAL_H
#define DSK_CPU_OPS_INTERNAL_H

#include "core/backend.h"

dsk_status dsk_cpu_quant_act(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s);
dsk_status dsk_cpu_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a);
dsk_status dsk_cpu_rope(dsk_device *dev, const dsk_rope_args *a);
dsk_status dsk_cpu_swiglu(dsk_device *dev, const dsk_swiglu_args *a);
dsk_status dsk_cpu_moe_route(dsk_device *dev, const dsk_moe_route_args *a);
dsk_status dsk_cpu_moe_permute(dsk_device *dev, const dsk_moe_permute_args *a);
dsk_status dsk_cpu_moe_combine(dsk_device *dev, const dsk_moe_combine_args *a);

#endif
