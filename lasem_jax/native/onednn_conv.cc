// oneDNN convolutions for XLA:CPU as FFI handlers: stride-1 SAME, NHWC images, HWIO kernels.
//
// Three handlers, one per part of a training step's convolution:
//   lasem_conv_fwd(x [..., N, H, W, Ci], w [..., kh, kw, Ci, Co])  -> y  [..., N, H, W, Co]
//   lasem_conv_bwd_data(g [..., N, H, W, Co], w [..., kh, kw, Ci, Co]) -> dx [..., N, H, W, Ci]
//   lasem_conv_bwd_weights(x [..., N, H, W, Ci], g [..., N, H, W, Co]) -> dw [..., kh, kw, Ci, Co]
// Leading dimensions (vmap's "broadcast_all") are a batch of independent convolutions, run one
// after another. SAME padding of a stride-1 convolution: (k - 1) / 2 before, k / 2 after, as
// TF and jax.lax.conv_general_dilated(..., "SAME").
//
// oneDNN picks the weights' layout ("any"); user weights are reordered into it (and gradients
// back), images stay NHWC. Primitives are created once per shape and kept; every call gets its
// own scratchpad (a per-thread buffer), so concurrent calls (XLA:CPU runs independent thunks in
// parallel) never share memory.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum class Op { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

// N, H, W, Ci, Co, kh, kw.
using Shape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

struct Entry {
  dnnl::primitive conv;
  dnnl::memory::desc image_in, image_out;   // NHWC descriptors of the two image-shaped args.
  dnnl::memory::desc user_weights, weights;  // HWIO and the primitive's own layout.
  dnnl::reorder weights_reorder;             // user -> primitive (fwd, bwd data) or back.
  bool reorder = false;
  size_t scratch_bytes = 0;
  std::string impl;
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::desc Images(int64_t n, int64_t h, int64_t w, int64_t c) {
  return {{n, c, h, w}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc};
}

std::shared_ptr<Entry> Build(Op op, const Shape& s) {
  const auto [n, h, w, ci, co, kh, kw] = s;
  using dnnl::memory;
  const memory::dims strides{1, 1}, lo{(kh - 1) / 2, (kw - 1) / 2}, hi{kh / 2, kw / 2};
  const memory::desc src = Images(n, h, w, ci), dst = Images(n, h, w, co);
  const memory::desc user_w({co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::hwio);
  const memory::desc any_w({co, ci, kh, kw}, memory::data_type::f32, memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto& eng = Engine();
  const dnnl::convolution_forward::primitive_desc fwd(
      eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, any_w,
      dst, strides, lo, hi, attr);
  auto e = std::make_shared<Entry>();
  e->user_weights = user_w;
  if (op == Op::kForward) {
    e->conv = dnnl::convolution_forward(fwd);
    e->weights = fwd.weights_desc();
    e->image_in = src, e->image_out = dst;
    e->scratch_bytes = fwd.scratchpad_desc().get_size();
    e->impl = fwd.impl_info_str();
  } else if (op == Op::kBackwardData) {
    const dnnl::convolution_backward_data::primitive_desc bwd(
        eng, dnnl::algorithm::convolution_direct, src, any_w, dst, strides, lo, hi, fwd, attr);
    e->conv = dnnl::convolution_backward_data(bwd);
    e->weights = bwd.weights_desc();
    e->image_in = dst, e->image_out = src;
    e->scratch_bytes = bwd.scratchpad_desc().get_size();
    e->impl = bwd.impl_info_str();
  } else {
    const dnnl::convolution_backward_weights::primitive_desc bwd(
        eng, dnnl::algorithm::convolution_direct, src, any_w, dst, strides, lo, hi, fwd, attr);
    e->conv = dnnl::convolution_backward_weights(bwd);
    e->weights = bwd.diff_weights_desc();
    e->image_in = src, e->image_out = dst;
    e->scratch_bytes = bwd.scratchpad_desc().get_size();
    e->impl = bwd.impl_info_str();
  }
  e->reorder = e->weights != user_w;
  if (e->reorder) {
    e->weights_reorder = op == Op::kBackwardWeights
                             ? dnnl::reorder(dnnl::reorder::primitive_desc(
                                   eng, e->weights, eng, user_w))
                             : dnnl::reorder(dnnl::reorder::primitive_desc(
                                   eng, user_w, eng, e->weights));
  }
  return e;
}

std::shared_ptr<Entry> Lookup(Op op, const Shape& s) {
  static std::mutex mutex;
  static std::map<std::pair<int, Shape>, std::shared_ptr<Entry>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{static_cast<int>(op), s}];
  if (!slot) slot = Build(op, s);
  return slot;
}

// A growing per-thread buffer: no allocation (and no page faults on fresh pages) per call, and
// no sharing between concurrent calls, which XLA makes from different threads.
uint8_t* ThreadBuffer(int slot, size_t bytes) {
  thread_local std::vector<uint8_t> buffers[2];
  auto& buffer = buffers[slot];
  if (buffer.size() < bytes + 1) buffer.resize(bytes + 1);
  return buffer.data();
}

// One convolution: `a`, `b` and `out` as in the file comment, for the op.
void RunOne(Op op, const Entry& e, float* a, float* b, float* out) {
  auto& eng = Engine();
  thread_local dnnl::stream stream(eng);
  dnnl::memory scratchpad({{static_cast<int64_t>(e.scratch_bytes)}, dnnl::memory::data_type::u8,
                           dnnl::memory::format_tag::x},
                          eng, ThreadBuffer(0, e.scratch_bytes));
  float* user_w = op == Op::kBackwardWeights ? out : b;
  dnnl::memory user(e.user_weights, eng, user_w);
  dnnl::memory weights =
      e.reorder ? dnnl::memory(e.weights, eng, ThreadBuffer(1, e.weights.get_size())) : user;
  if (e.reorder && op != Op::kBackwardWeights) e.weights_reorder.execute(stream, user, weights);
  if (op == Op::kForward) {
    e.conv.execute(stream, {{DNNL_ARG_SRC, dnnl::memory(e.image_in, eng, a)},
                            {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_DST, dnnl::memory(e.image_out, eng, out)},
                            {DNNL_ARG_SCRATCHPAD, scratchpad}});
  } else if (op == Op::kBackwardData) {
    e.conv.execute(stream, {{DNNL_ARG_DIFF_DST, dnnl::memory(e.image_in, eng, a)},
                            {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_DIFF_SRC, dnnl::memory(e.image_out, eng, out)},
                            {DNNL_ARG_SCRATCHPAD, scratchpad}});
  } else {
    e.conv.execute(stream, {{DNNL_ARG_SRC, dnnl::memory(e.image_in, eng, a)},
                            {DNNL_ARG_DIFF_DST, dnnl::memory(e.image_out, eng, b)},
                            {DNNL_ARG_DIFF_WEIGHTS, weights},
                            {DNNL_ARG_SCRATCHPAD, scratchpad}});
    if (e.reorder) e.weights_reorder.execute(stream, weights, user);
  }
  stream.wait();
}

int64_t Product(ffi::AnyBuffer::Dimensions d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= d[i];
  return p;
}

// The shape of the convolution and the number of leading (batched) convolutions.
ffi::Error Parse(Op op, ffi::AnyBuffer::Dimensions a, ffi::AnyBuffer::Dimensions b,
                 ffi::AnyBuffer::Dimensions out, Shape* shape, int64_t* groups) {
  if (a.size() < 4 || a.size() != b.size() || a.size() != out.size()) {
    return ffi::Error::InvalidArgument("lasem conv: arguments need rank >= 4 and equal ranks");
  }
  const size_t r = a.size() - 4;
  const auto image = op == Op::kBackwardWeights ? a : (op == Op::kForward ? a : out);
  const auto kernel = op == Op::kBackwardWeights ? out : b;
  const int64_t co = op == Op::kBackwardWeights ? b[r + 3] : (op == Op::kForward ? out : a)[r + 3];
  const Shape s{image[r], image[r + 1], image[r + 2], kernel[r + 2], co, kernel[r], kernel[r + 1]};
  if (kernel[r + 3] != co || image[r + 3] != kernel[r + 2]) {
    return ffi::Error::InvalidArgument("lasem conv: channel counts of the arguments disagree");
  }
  *shape = s, *groups = Product(a, 0, r);
  return ffi::Error::Success();
}

ffi::Error Run(Op op, ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out) {
  for (auto t : {a.element_type(), b.element_type(), out->element_type()}) {
    if (t != ffi::DataType::F32) return ffi::Error::InvalidArgument("lasem conv: float32 only");
  }
  Shape shape;
  int64_t groups = 0;
  auto parsed = Parse(op, a.dimensions(), b.dimensions(), out->dimensions(), &shape, &groups);
  if (parsed.failure()) return parsed;
  const auto [n, h, w, ci, co, kh, kw] = shape;
  if (groups == 0 || n == 0 || h == 0 || w == 0) return ffi::Error::Success();
  try {
    const auto entry = Lookup(op, shape);
    const int64_t x_size = n * h * w * ci, y_size = n * h * w * co, w_size = kh * kw * ci * co;
    const int64_t a_size = op == Op::kBackwardData ? y_size : x_size;
    const int64_t b_size = op == Op::kBackwardWeights ? y_size : w_size;
    const int64_t out_size = op == Op::kForward ? y_size : (op == Op::kBackwardData ? x_size : w_size);
    auto* pa = static_cast<float*>(a.untyped_data());
    auto* pb = static_cast<float*>(b.untyped_data());
    auto* po = static_cast<float*>(out->untyped_data());
    for (int64_t g = 0; g < groups; ++g) {
      RunOne(op, *entry, pa + g * a_size, pb + g * b_size, po + g * out_size);
    }
  } catch (const dnnl::error& err) {
    return ffi::Error::Internal(std::string("lasem conv (oneDNN): ") + err.what());
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y) {
  return Run(Op::kForward, x, w, y);
}
ffi::Error BackwardData(ffi::AnyBuffer g, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> dx) {
  return Run(Op::kBackwardData, g, w, dx);
}
ffi::Error BackwardWeights(ffi::AnyBuffer x, ffi::AnyBuffer g, ffi::Result<ffi::AnyBuffer> dw) {
  return Run(Op::kBackwardWeights, x, g, dw);
}

}  // namespace

#define LASEM_BIND ffi::Ffi::Bind().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>()
XLA_FFI_DEFINE_HANDLER_SYMBOL(LasemConvForward, Forward, LASEM_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(LasemConvBackwardData, BackwardData, LASEM_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(LasemConvBackwardWeights, BackwardWeights, LASEM_BIND);

// The implementation oneDNN chose for an op and shape (e.g. "brg:avx512_core"), for the logs and
// benchmarks; writes at most `size - 1` characters and a NUL into `out`.
extern "C" int lasem_conv_impl(int op, int64_t n, int64_t h, int64_t w, int64_t ci, int64_t co,
                               int64_t kh, int64_t kw, char* out, int size) {
  try {
    const auto e = Lookup(static_cast<Op>(op), Shape{n, h, w, ci, co, kh, kw});
    snprintf(out, size, "%s", e->impl.c_str());
    return 0;
  } catch (const dnnl::error&) {
    return 1;
  }
}
