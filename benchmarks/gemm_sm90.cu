// A CUTLASS 3.x sm90a GEMM translation unit in the shape Inductor renders:
// bf16 A (row-major) x bf16 B (column-major) -> bf16 D, fp32 accumulation,
// CollectiveBuilder mainloop + epilogue, TMA warp-specialized cooperative kernel,
// GemmUniversalAdapter, and an exported C entry point with a workspace query.
// Used by benchmarks/nvcc_modes.py to measure nvcc modes; the INJECT_* macros
// plant one error each, to see which mode catches it.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/numeric_types.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#include "cutlass/util/packed_stride.hpp"

#ifdef INJECT_MISSING_INCLUDE
#include "cutlass/no_such_header.h"
#endif

#define PT_EXPORT __attribute__((__visibility__("default")))

using namespace cute;

using ElementA = cutlass::bfloat16_t;
using LayoutA = cutlass::layout::RowMajor;
using ElementB = cutlass::bfloat16_t;
using LayoutB = cutlass::layout::ColumnMajor;
using ElementC = cutlass::bfloat16_t;
using LayoutC = cutlass::layout::RowMajor;
using ElementD = cutlass::bfloat16_t;
using LayoutD = cutlass::layout::RowMajor;
using ElementAccumulator = float;
using ElementCompute = float;

#ifdef INJECT_BAD_ALIGNMENT
// A misaligned operand: CollectiveBuilder's static_asserts fire deep in CUTLASS headers.
constexpr int AlignmentA = 3;
#else
constexpr int AlignmentA = 8;
#endif
constexpr int AlignmentB = 8;
constexpr int AlignmentC = 8;
constexpr int AlignmentD = 8;

using TileShape = Shape<_128, _128, _64>;
using ClusterShape = Shape<_1, _2, _1>;

using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
    cutlass::epilogue::collective::EpilogueTileAuto, ElementAccumulator, ElementCompute,
    ElementC, LayoutC, AlignmentC, ElementD, LayoutD, AlignmentD,
    cutlass::epilogue::TmaWarpSpecializedCooperative>::CollectiveOp;

using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
    cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementA, LayoutA, AlignmentA,
    ElementB, LayoutB, AlignmentB, ElementAccumulator, TileShape, ClusterShape,
    cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
        sizeof(typename CollectiveEpilogue::SharedStorage))>,
    cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;

using GemmKernel = cutlass::gemm::kernel::GemmUniversal<
    Shape<int, int, int, int>, CollectiveMainloop, CollectiveEpilogue,
    cutlass::gemm::PersistentScheduler>;

using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;

#ifdef INJECT_DEVICE_CALLS_HOST
static int host_only_helper(int x) { return x + 1; }
__global__ void inject_kernel(int* out) { out[0] = host_only_helper(out[0]); }
#endif

#ifdef INJECT_HOST_CALLS_DEVICE
__device__ int device_only_helper(int x) { return x + 1; }
static int host_calls_device(int x) { return device_only_helper(x); }
#endif

#ifdef INJECT_TOO_MUCH_SMEM
__global__ void inject_kernel(char* out) {
  __shared__ char buf[300000];
  buf[threadIdx.x] = out[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = buf[threadIdx.x + 1];
}
#endif

#ifdef INJECT_HOST_TYPE_ERROR
// A non-template host function with a type error (EDG, host side).
static int host_type_error() {
  int* p = 1.5;
  return *p;
}
#endif

#ifdef INJECT_HOST_TEMPLATE_ERROR
// A host-only function template with an error that shows only when instantiated.
template <class T>
static int host_template_error(T x) {
  return x.no_such_member;
}
#endif

#ifdef INJECT_HOST_ASM_ERROR
// Only the host compiler (gcc + as) sees inside host inline asm.
static void host_asm_error() { asm volatile("not_an_x86_instruction %eax"); }
#endif

extern "C" PT_EXPORT int kernel(const cutlass::bfloat16_t* X, const cutlass::bfloat16_t* W,
                                cutlass::bfloat16_t* Y, int M, int N, int K,
                                size_t* workspace_size, uint8_t* workspace,
                                cudaStream_t stream) {
#ifdef INJECT_HOST_ASM_ERROR
  host_asm_error();
#endif
#ifdef INJECT_HOST_TYPE_ERROR
  (void)host_type_error();
#endif
#ifdef INJECT_HOST_TEMPLATE_ERROR
  (void)host_template_error(M);
#endif
#ifdef INJECT_HOST_CALLS_DEVICE
  (void)host_calls_device(M);
#endif
  using StrideA = typename Gemm::GemmKernel::StrideA;
  using StrideB = typename Gemm::GemmKernel::StrideB;
  using StrideC = typename Gemm::GemmKernel::StrideC;
  using StrideD = typename Gemm::GemmKernel::StrideD;
  StrideA stride_a = cutlass::make_cute_packed_stride(StrideA{}, cute::make_shape(M, K, 1));
  StrideB stride_b = cutlass::make_cute_packed_stride(StrideB{}, cute::make_shape(N, K, 1));
  StrideC stride_c = cutlass::make_cute_packed_stride(StrideC{}, cute::make_shape(M, N, 1));
  StrideD stride_d = cutlass::make_cute_packed_stride(StrideD{}, cute::make_shape(M, N, 1));
  typename Gemm::Arguments args{
      cutlass::gemm::GemmUniversalMode::kGemm,
      {M, N, K, 1},
      {X, stride_a, W, stride_b},
      {{1.0f, 0.0f}, nullptr, stride_c, Y, stride_d},
  };
  Gemm gemm;
  if (workspace_size) {
    *workspace_size = Gemm::get_workspace_size(args);
    return 0;
  }
  if (gemm.can_implement(args) != cutlass::Status::kSuccess) return -1;
  if (gemm.initialize(args, workspace, stream) != cutlass::Status::kSuccess) return -2;
  if (gemm.run(stream) != cutlass::Status::kSuccess) return -3;
  return 0;
}
