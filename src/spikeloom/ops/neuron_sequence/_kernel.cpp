// Compiled CPU kernels of the multi-step neuron op (spikeloom.ops.neuron_sequence.cpu_kernel).
//
// A plain CPython extension: the Python side passes raw data pointers (tensor.data_ptr()),
// sizes and strides as integers, so no torch headers are needed and the build is an ordinary
// setuptools Extension. Each operand is a [T, N] array (N = neurons = B * C * H * W ...) whose
// neuron axis is either contiguous (stride 1) or broadcast (stride 0); its time stride is free.
// The neuron axis is cut into chunks of up to 16 KiB of neurons (4096 float32, 2048 float64);
// OpenMP threads take whole chunks and run the time loop over a chunk with its state in small
// local arrays (L1/L2), so every element is read and written once per pass, each row access is
// a long contiguous run (few TLB misses, prefetch-friendly), and the inner loops vectorise.
//
// ISA variants: the kernel bodies (_kernel_impl.h) are compiled three times, for AVX-512,
// AVX2 and the baseline ISA, with `#pragma GCC target` (GCC/Clang on x86-64; elsewhere only the
// baseline), and the best variant the running CPU supports is used unless the caller names
// one. Forward results (spikes, potentials, state) are identical in every variant: no FMA
// contraction, the same operations in the same order. The backward uses fused multiply-add
// where the variant has it (AVX-512, AVX2+FMA), so gradients differ from the baseline's in
// the last bits (both within the tested tolerance of the reference).
//
// Fresh output buffers: `prepare_output` asks Linux for transparent huge pages on a large, not
// yet touched buffer and touches its pages in parallel (see there).
//
// The arithmetic follows the reference loop operation by operation (no FMA contraction: the
// build passes -ffp-contract=off), so spikes are bit-identical to the reference.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int64_t CHUNK_BYTES = 16384;  // per state array and chunk
template <typename R>
constexpr int64_t kChunk = CHUNK_BYTES / int64_t(sizeof(R));  // neurons per chunk at most

struct Operand {  // a [T, N] array: element (t, i) at ptr[t * st + i * sn], sn in {0, 1}
  uintptr_t ptr;
  int64_t st;
  int64_t sn;
};

enum Surr { RECT = 0, TRI = 1, SIGMOID = 2, ATAN = 3, GAUSS = 4 };

struct Params {
  double v_th, v_reset, surr_p;
  int soft, fire_ge, detach, surr;
  int64_t T, N;
  int stream;  // non-temporal stores for the spike / input-gradient outputs
};

// Kernel entry points (one per specialisation) and the pickers that choose them.
template <typename R>
using FwdFn = void (*)(const Params&, const Operand&, const Operand&, const Operand&, R*, R*,
                       R*, int64_t, int64_t);
template <typename R>
using BwdFn = void (*)(const Params&, const R*, const Operand&, const Operand&, const Operand&,
                       const Operand&, const Operand&, const Operand&, R*, R*, R*, int64_t,
                       int64_t);

template <typename R>
using FwdPick = FwdFn<R> (*)(const Params&);
template <typename R>
using BwdPick = BwdFn<R> (*)(const Params&, bool);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SPIKELOOM_X86_VARIANTS 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512")
namespace isa_avx512 {
constexpr bool kFma = true;
#include "_kernel_impl.h"
}
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
constexpr bool kFma = true;
#include "_kernel_impl.h"
}
#pragma GCC pop_options
#endif
namespace isa_base {
constexpr bool kFma = false;
#include "_kernel_impl.h"
}

// Variant table, best first: name, support test, float/double forward and backward pickers.
struct Variant {
  const char* name;
  bool (*supported)();
  FwdPick<float> ff;
  FwdPick<double> fd;
  BwdPick<float> bf;
  BwdPick<double> bd;
};
#define SPIKELOOM_VARIANT(NAME, NS, TEST)                                              \
  Variant {                                                                             \
    NAME, TEST, NS::pick_forward<float>, NS::pick_forward<double>, NS::pick_backward<float>, \
        NS::pick_backward<double>                                                       \
  }
const Variant kVariants[] = {
#ifdef SPIKELOOM_X86_VARIANTS
    SPIKELOOM_VARIANT("avx512", isa_avx512, []() {
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma");
    }),
    SPIKELOOM_VARIANT("avx2", isa_avx2, []() {
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }),
#endif
    SPIKELOOM_VARIANT("base", isa_base, []() { return true; }),
};
constexpr int kNumVariants = int(sizeof(kVariants) / sizeof(kVariants[0]));

// The variant to run: `isa` < 0 picks the best supported one; otherwise that index if the CPU
// supports it, else nullptr (a Python error is set).
const Variant* pick_variant(int isa) {
  if (isa < 0) {
    for (const Variant& v : kVariants)
      if (v.supported()) return &v;
  } else if (isa < kNumVariants && kVariants[isa].supported()) {
    return &kVariants[isa];
  }
  PyErr_Format(PyExc_ValueError, "ISA variant %d is not available on this CPU", isa);
  return nullptr;
}
bool parse_operand(PyObject* tup, Operand* o) {
  unsigned long long p;
  long long st, sn;
  if (!PyArg_ParseTuple(tup, "KLL", &p, &st, &sn)) return false;
  if (sn != 0 && sn != 1) {
    PyErr_SetString(PyExc_ValueError, "operand neuron stride must be 0 or 1");
    return false;
  }
  o->ptr = uintptr_t(p);
  o->st = st;
  o->sn = sn;
  return true;
}

// Per-thread scratch for the recomputed potentials of one chunk: grown on demand and kept (the
// OpenMP pool's threads persist), so steady-state calls touch no fresh memory. About T x 16 KiB
// at most per thread (the chunk cap keeps it near 512 KiB for usual T).
template <typename R>
R* thread_scratch(int64_t count) {
  thread_local std::vector<R> buf;
  if (int64_t(buf.size()) < count) buf.resize(size_t(count));
  return buf.data();
}

template <typename F>
void parallel_chunks(int64_t N, int threads, int64_t max_chunk, F fn) {
  // at least ~4 chunks per thread for balance, at most max_chunk, a multiple of 64 neurons
  int64_t ch = (N / (4 * int64_t(threads > 0 ? threads : 1)) + 63) / 64 * 64;
  ch = std::max<int64_t>(std::min<int64_t>(ch, max_chunk), std::min<int64_t>(256, max_chunk));
  const int64_t nchunks = (N + ch - 1) / ch;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && nchunks > 1)
#endif
  for (int64_t c = 0; c < nchunks; ++c) {
    int64_t i0 = c * ch;
    fn(i0, (N - i0) < ch ? (N - i0) : ch);
  }
  (void)threads;
}

// forward(is_double, T, N, x, k, v0, s_ptr, u_ptr (0: not stored), vT_ptr, v_th, v_reset, soft,
//         fire_ge, threads[, isa[, stream]]): stream = non-temporal stores for the spikes.
// Operands are (ptr, time stride, neuron stride) tuples, v0's ptr 0 = rest.
PyObject* py_forward(PyObject*, PyObject* args) {
  int is_double, soft, fire_ge, threads, isa = -1, stream = 0;
  long long T, N;
  PyObject *ox, *ok, *ov0;
  unsigned long long ps, pu, pv;
  double v_th, v_reset;
  if (!PyArg_ParseTuple(args, "pLLOOOKKKddppi|ip", &is_double, &T, &N, &ox, &ok, &ov0, &ps,
                        &pu, &pv, &v_th, &v_reset, &soft, &fire_ge, &threads, &isa, &stream))
    return nullptr;
  const Variant* var = pick_variant(isa);
  if (!var) return nullptr;
  Operand x, k, v0;
  if (!parse_operand(ox, &x) || !parse_operand(ok, &k) || !parse_operand(ov0, &v0))
    return nullptr;
  Params P{v_th, v_reset, 0.0, soft, fire_ge, 0, 0, T, N, stream};
  Py_BEGIN_ALLOW_THREADS
  if (is_double) {
    FwdFn<double> f = var->fd(P);
    parallel_chunks(N, threads, kChunk<double>, [&](int64_t i0, int64_t n) {
      f(P, x, k, v0, (double*)ps, (double*)pu, (double*)pv, i0, n);
    });
  } else {
    FwdFn<float> f = var->ff(P);
    parallel_chunks(N, threads, kChunk<float>, [&](int64_t i0, int64_t n) {
      f(P, x, k, v0, (float*)ps, (float*)pu, (float*)pv, i0, n);
    });
  }
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// backward(is_double, T, N, u_ptr, k, g_s, g_u, g_v, gx_ptr, gk_ptr, v_th, v_reset, soft,
//          fire_ge, detach, surrogate, surrogate_param, threads[, isa[, x, v0[, stream]]]);
//          stream = non-temporal stores for the input gradient; absent grads
//          have ptr 0. With u_ptr 0 the potentials are recomputed from the operands x and v0
//          (the forward's input and initial state) inside each chunk.
PyObject* py_backward(PyObject*, PyObject* args) {
  int is_double, soft, fire_ge, detach, surr, threads, isa = -1, stream = 0;
  long long T, N;
  PyObject *ok, *ogs, *ogu, *ogv, *ox = nullptr, *ov0 = nullptr;
  unsigned long long pu, pgx, pgk;
  double v_th, v_reset, surr_p;
  if (!PyArg_ParseTuple(args, "pLLKOOOOKKddpppidi|iOOp", &is_double, &T, &N, &pu, &ok, &ogs,
                        &ogu, &ogv, &pgx, &pgk, &v_th, &v_reset, &soft, &fire_ge, &detach,
                        &surr, &surr_p, &threads, &isa, &ox, &ov0, &stream))
    return nullptr;
  const Variant* var = pick_variant(isa);
  if (!var) return nullptr;
  Operand k, gs, gu, gv, x{0, 0, 0}, v0{0, 0, 0};
  if (!parse_operand(ok, &k) || !parse_operand(ogs, &gs) || !parse_operand(ogu, &gu) ||
      !parse_operand(ogv, &gv) || (ox && ox != Py_None && !parse_operand(ox, &x)) ||
      (ov0 && ov0 != Py_None && !parse_operand(ov0, &v0)))
    return nullptr;
  if (!pu && !x.ptr) {
    PyErr_SetString(PyExc_ValueError, "backward needs u_ptr or the input operand x");
    return nullptr;
  }
  // recomputation keeps a chunk's T rows in L2 between its two passes: ~512 KiB per thread
  const int64_t l2_rows = pu ? 0 : (int64_t(1) << 19) / (T > 0 ? T : 1);
  if (surr < RECT || surr > GAUSS) {
    PyErr_SetString(PyExc_ValueError, "unknown surrogate id");
    return nullptr;
  }
  Params P{v_th, v_reset, surr_p, soft, fire_ge, detach, surr, T, N, stream};
  Py_BEGIN_ALLOW_THREADS
  if (is_double) {
    BwdFn<double> f = var->bd(P, pgk != 0);
    const int64_t cap =
        l2_rows ? std::max<int64_t>(64, std::min<int64_t>(kChunk<double>, l2_rows / 8)) : kChunk<double>;
    parallel_chunks(N, threads, cap, [&](int64_t i0, int64_t n) {
      double* scratch = pu ? nullptr : thread_scratch<double>(T * n);
      f(P, (const double*)pu, x, v0, k, gs, gu, gv, (double*)pgx, (double*)pgk, scratch, i0, n);
    });
  } else {
    BwdFn<float> f = var->bf(P, pgk != 0);
    const int64_t cap =
        l2_rows ? std::max<int64_t>(64, std::min<int64_t>(kChunk<float>, l2_rows / 4)) : kChunk<float>;
    parallel_chunks(N, threads, cap, [&](int64_t i0, int64_t n) {
      float* scratch = pu ? nullptr : thread_scratch<float>(T * n);
      f(P, (const float*)pu, x, v0, k, gs, gu, gv, (float*)pgx, (float*)pgk, scratch, i0, n);
    });
  }
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// pack_bits(is_double, src_ptr, n, dst_ptr) -> bool: packs n 0/1 values (8 per byte, first
// value in the lowest bit) and returns False (leaving dst partly written) at the first value
// that is neither 0 nor 1.
template <typename R>
bool pack_bits_impl(const R* src, int64_t n, uint8_t* dst) {
  const int64_t nbytes = (n + 7) / 8;
  const int64_t head = n < 4096 ? n : 4096;  // cheap early exit for analog tensors
  for (int64_t i = 0; i < head; ++i)
    if (!(src[i] == R(0) || src[i] == R(1))) return false;
  bool ok = true;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(&& : ok) if (nbytes > (1 << 16))
#endif
  for (int64_t b = 0; b < nbytes; ++b) {
    uint8_t byte = 0;
    const int64_t i0 = b * 8, i1 = (i0 + 8 < n) ? i0 + 8 : n;
    for (int64_t i = i0; i < i1; ++i) {
      R v = src[i];
      ok = ok && (v == R(0) || v == R(1));
      byte |= uint8_t(v == R(1)) << (i - i0);
    }
    dst[b] = byte;
  }
  return ok;
}

template <typename R>
void unpack_bits_impl(const uint8_t* src, int64_t n, R* dst) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > (1 << 19))
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = R((src[i >> 3] >> (i & 7)) & 1);
}

PyObject* py_pack_bits(PyObject*, PyObject* args) {
  int is_double;
  unsigned long long src, dst;
  long long n;
  if (!PyArg_ParseTuple(args, "pKLK", &is_double, &src, &n, &dst)) return nullptr;
  bool ok;
  Py_BEGIN_ALLOW_THREADS
  ok = is_double ? pack_bits_impl((const double*)src, n, (uint8_t*)dst)
                 : pack_bits_impl((const float*)src, n, (uint8_t*)dst);
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(ok);
}

PyObject* py_unpack_bits(PyObject*, PyObject* args) {
  int is_double;
  unsigned long long src, dst;
  long long n;
  if (!PyArg_ParseTuple(args, "pKLK", &is_double, &src, &n, &dst)) return nullptr;
  Py_BEGIN_ALLOW_THREADS
  if (is_double)
    unpack_bits_impl((const uint8_t*)src, n, (double*)dst);
  else
    unpack_bits_impl((const uint8_t*)src, n, (float*)dst);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// isas() -> tuple of the ISA variant names this CPU supports, best first; the index of a name
// in the full list `all_isas()` is the `isa` argument of forward/backward.
PyObject* py_isas(PyObject*, PyObject*) {
  PyObject* out = PyTuple_New(0);
  for (const Variant& v : kVariants) {
    if (!v.supported()) continue;
    PyObject* name = PyUnicode_FromString(v.name);
    Py_ssize_t n = PyTuple_GET_SIZE(out);
    if (!name || _PyTuple_Resize(&out, n + 1) < 0) return nullptr;
    PyTuple_SET_ITEM(out, n, name);
  }
  return out;
}

PyObject* py_all_isas(PyObject*, PyObject*) {
  PyObject* out = PyTuple_New(kNumVariants);
  for (int i = 0; out && i < kNumVariants; ++i)
    PyTuple_SET_ITEM(out, i, PyUnicode_FromString(kVariants[i].name));
  return out;
}

// prepare_output(ptr, nbytes, threads) -> bytes advised: readies a large buffer that nobody has
// touched yet (an uninitialised torch.empty) for the kernel's writes. (1) On Linux, asks for
// transparent huge pages on its 2 MiB-aligned interior (madvise MADV_HUGEPAGE; a hint: 0 when
// not granted or elsewhere), so first touch costs one page fault per 2 MiB instead of per 4 KiB.
// (2) Touches every page once, the pages split into contiguous ranges over the threads, so the
// operating system zeroes fresh pages in parallel: left to the kernel's own loops, each 2 MiB
// row of a [T, N] tensor is shared by all threads and its zeroing is serialised. The touch writes
// a zero byte into memory whose content is undefined anyway.
PyObject* py_prepare_output(PyObject*, PyObject* args) {
  unsigned long long p, nbytes;
  int threads;
  if (!PyArg_ParseTuple(args, "KKi", &p, &nbytes, &threads)) return nullptr;
  long long advised = 0;
  Py_BEGIN_ALLOW_THREADS
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const unsigned long long huge = 2ull << 20;
  unsigned long long a = (p + huge - 1) / huge * huge, b = (p + nbytes) / huge * huge;
  if (b > a && madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE) == 0)
    advised = (long long)(b - a);
#endif
  const int64_t page = 4096;
  const int64_t first = int64_t(p / page), last = int64_t((p + nbytes - 1) / page);
  volatile char* base = reinterpret_cast<volatile char*>(0);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
  for (int64_t pg = first; pg <= last; ++pg) {
    unsigned long long addr = std::max<unsigned long long>(p, (unsigned long long)pg * page);
    base[addr] = 0;
  }
  (void)threads;
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(advised);
}

PyMethodDef methods[] = {
    {"isas", py_isas, METH_NOARGS, "ISA variants supported by this CPU, best first"},
    {"all_isas", py_all_isas, METH_NOARGS, "all compiled ISA variants (index = isa argument)"},
    {"prepare_output", py_prepare_output, METH_VARARGS,
     "huge-page hint + parallel first touch of a fresh, untouched buffer"},
    {"forward", py_forward, METH_VARARGS, "neuron sequence forward (raw pointers)"},
    {"backward", py_backward, METH_VARARGS, "neuron sequence backward (raw pointers)"},
    {"pack_bits", py_pack_bits, METH_VARARGS, "pack 0/1 floats into bits; False if not binary"},
    {"unpack_bits", py_unpack_bits, METH_VARARGS, "unpack bits into 0/1 floats"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel",
                      "Compiled CPU kernels of the neuron sequence op (raw-pointer interface).",
                      -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__kernel(void) {
  PyObject* m = PyModule_Create(&module);
#ifdef _OPENMP
  if (m) PyModule_AddIntConstant(m, "openmp", 1);
#else
  if (m) PyModule_AddIntConstant(m, "openmp", 0);
#endif
  return m;
}
