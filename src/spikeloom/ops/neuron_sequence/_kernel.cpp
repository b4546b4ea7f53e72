// Compiled CPU kernels of the multi-step neuron op (spikeloom.ops.neuron_sequence.cpu_kernel).
//
// A plain CPython extension: the Python side passes raw data pointers (tensor.data_ptr()),
// sizes and strides as integers, so no torch headers are needed and the build is an ordinary
// setuptools Extension. Each operand is a [T, N] array (N = neurons = B * C * H * W ...) whose
// neuron axis is either contiguous (stride 1) or broadcast (stride 0); its time stride is free.
// The neuron axis is cut into chunks of CH neurons; OpenMP threads take whole chunks and run
// the time loop over a chunk with its state in a small local array (registers / L1), so every
// element is read and written once per pass and the inner loops vectorise.
//
// The arithmetic follows the reference loop operation by operation (no FMA contraction: the
// build passes -ffp-contract=off), so spikes are bit-identical to the reference.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int64_t CH = 256;  // neurons per chunk

struct Operand {  // a [T, N] array: element (t, i) at ptr[t * st + i * sn], sn in {0, 1}
  uintptr_t ptr;
  int64_t st;
  int64_t sn;
};

enum Surr { RECT = 0, TRI = 1, SIGMOID = 2, ATAN = 3, GAUSS = 4 };

// exp(x) for the surrogates: float uses a branch-free polynomial the compiler vectorises
// (range reduction x = n·ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial, error ~1e-7
// relative, argument clamped to [-80, 80] where the surrogates are ~1e-35 anyway); double
// keeps the C library's exp.
inline float vexp(float x) {
  x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);
  const float magic = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 split in two parts
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double vexp(double x) { return std::exp(x); }

// Surrogate derivative h(z) with its constants computed once (a division or square root
// inside the loop would keep the compiler from if-converting and vectorising it).
template <typename R, int S>
struct Surrogate {
  R c0, c1, c2;
  explicit Surrogate(R p) {
    if constexpr (S == RECT) {
      c0 = p / R(2);
      c1 = R(1) / p;
    } else if constexpr (S == TRI) {
      c0 = std::sqrt(p) / R(2);
      c1 = p / R(4);
    } else if constexpr (S == SIGMOID) {
      c0 = p;
    } else if constexpr (S == ATAN) {
      c0 = R(M_PI / 2) * p;
      c1 = p / R(2);
    } else {
      c0 = p;
      c1 = p * std::sqrt(R(2 * M_PI));
    }
  }
  inline R operator()(R z) const {
    if constexpr (S == RECT) {
      return (std::fabs(z) < c0) ? c1 : R(0);
    } else if constexpr (S == TRI) {
      R g = c0 - c1 * std::fabs(z);
      return g > R(0) ? g : R(0);
    } else if constexpr (S == SIGMOID) {
      R sg = R(1) / (R(1) + vexp(-(c0 * z)));
      return c0 * sg * (R(1) - sg);
    } else if constexpr (S == ATAN) {
      R w = c0 * z;
      return c1 / (R(1) + w * w);
    } else {
      R w = z / c0;
      return vexp(R(-0.5) * (w * w)) / c1;
    }
  }
};

// Pointer to the n neurons [i0, i0 + n) of row t; a broadcast or absent (ptr 0: zeros) row
// is written into buf.
template <typename R>
inline const R* row(const Operand& a, int64_t t, int64_t i0, int64_t n, R* buf) {
  if (!a.ptr) {
    for (int64_t j = 0; j < n; ++j) buf[j] = R(0);
    return buf;
  }
  const R* p = reinterpret_cast<const R*>(a.ptr) + t * a.st;
  if (a.sn) return p + i0;
  for (int64_t j = 0; j < n; ++j) buf[j] = p[0];
  return buf;
}

struct Params {
  double v_th, v_reset, surr_p;
  int soft, fire_ge, detach, surr;
  int64_t T, N;
};

template <typename R, bool SOFT, bool GE>
void forward_chunk(const Params& P, const Operand& x, const Operand& k, const Operand& v0,
                   R* s, R* u, R* vT, int64_t i0, int64_t n) {
  alignas(64) R v[CH], kb[CH], xb[CH];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset);
  const R* kk = row<R>(k, 0, i0, n, kb);
  const R* p0 = row<R>(v0, 0, i0, n, xb);  // zeros when absent
  for (int64_t j = 0; j < n; ++j) v[j] = p0[j];
  for (int64_t t = 0; t < P.T; ++t) {
    const R* xt = row<R>(x, t, i0, n, xb);
    R* __restrict st = s + t * P.N + i0;
    R* __restrict ut = u + t * P.N + i0;
#pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) {
      R uu = v[j] + xt[j];
      R sp = (GE ? (uu >= v_th) : (uu > v_th)) ? R(1) : R(0);
      R r = SOFT ? (uu - v_th * sp) : (sp != R(0) ? v_reset : uu);
      v[j] = kk[j] * r;
      st[j] = sp;
      ut[j] = uu;
    }
  }
  for (int64_t j = 0; j < n; ++j) vT[i0 + j] = v[j];
}

// dL/dx[t] = g_u[t] + g_s[t]·h(u[t] - V_th) + k·(dr/du)·dL/dv[t];  dL/dv[t-1] = dL/dx[t];
// dL/dk += dL/dv[t]·r[t]. Absent gradients are zeros (adding a zero is exact).
template <typename R, int S, bool SOFT, bool GE, bool DETACH, bool NEEDK>
void backward_chunk(const Params& P, const R* u, const Operand& k, const Operand& gs,
                    const Operand& gu, const Operand& gv, R* gx, R* gk, int64_t i0, int64_t n) {
  alignas(64) R g[CH], acc[CH], kb[CH], b1[CH], b2[CH];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset);
  const Surrogate<R, S> surrogate_grad(static_cast<R>(P.surr_p));
  const R* kk = row<R>(k, 0, i0, n, kb);
  const R* g0 = row<R>(gv, 0, i0, n, b1);
  for (int64_t j = 0; j < n; ++j) {
    g[j] = g0[j];
    acc[j] = R(0);
  }
  for (int64_t t = P.T - 1; t >= 0; --t) {
    const R* __restrict ut = u + t * P.N + i0;
    const R* gst = row<R>(gs, t, i0, n, b1);
    const R* gut = row<R>(gu, t, i0, n, b2);
    R* __restrict gxt = gx + t * P.N + i0;
#pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) {
      R uu = ut[j];
      R h = surrogate_grad(uu - v_th);
      R sp = (GE ? (uu >= v_th) : (uu > v_th)) ? R(1) : R(0);
      R m;  // dr/du
      if constexpr (SOFT)
        m = DETACH ? R(1) : (h * -v_th + R(1));
      else
        m = DETACH ? (R(1) - sp) : ((R(1) - sp) + (v_reset - uu) * h);
      R out = gut[j] + gst[j] * h;
      out = out + (m * kk[j]) * g[j];
      if constexpr (NEEDK) {
        R r = SOFT ? (uu - v_th * sp) : (uu + uu * sp * R(-1) + sp * v_reset);
        acc[j] = acc[j] + g[j] * r;
      }
      gxt[j] = out;
      g[j] = out;
    }
  }
  if (NEEDK)
    for (int64_t j = 0; j < n; ++j) gk[i0 + j] = acc[j];
}

// Compile-time dispatch: one specialised (branch-free, vectorisable) loop per combination.
template <typename R>
using FwdFn = void (*)(const Params&, const Operand&, const Operand&, const Operand&, R*, R*,
                       R*, int64_t, int64_t);
template <typename R>
using BwdFn = void (*)(const Params&, const R*, const Operand&, const Operand&,
                       const Operand&, const Operand&, R*, R*, int64_t, int64_t);

template <typename R>
FwdFn<R> pick_forward(const Params& P) {
  if (P.soft) return P.fire_ge ? forward_chunk<R, true, true> : forward_chunk<R, true, false>;
  return P.fire_ge ? forward_chunk<R, false, true> : forward_chunk<R, false, false>;
}

template <typename R, int S, bool SOFT, bool GE, bool DETACH>
BwdFn<R> pick_backward_k(bool needk) {
  return needk ? backward_chunk<R, S, SOFT, GE, DETACH, true>
               : backward_chunk<R, S, SOFT, GE, DETACH, false>;
}

template <typename R, int S>
BwdFn<R> pick_backward_s(const Params& P, bool needk) {
  const int c = (P.soft ? 4 : 0) + (P.fire_ge ? 2 : 0) + (P.detach ? 1 : 0);
  switch (c) {
    case 0: return pick_backward_k<R, S, false, false, false>(needk);
    case 1: return pick_backward_k<R, S, false, false, true>(needk);
    case 2: return pick_backward_k<R, S, false, true, false>(needk);
    case 3: return pick_backward_k<R, S, false, true, true>(needk);
    case 4: return pick_backward_k<R, S, true, false, false>(needk);
    case 5: return pick_backward_k<R, S, true, false, true>(needk);
    case 6: return pick_backward_k<R, S, true, true, false>(needk);
    default: return pick_backward_k<R, S, true, true, true>(needk);
  }
}

template <typename R>
BwdFn<R> pick_backward(const Params& P, bool needk) {
  switch (P.surr) {
    case RECT: return pick_backward_s<R, RECT>(P, needk);
    case TRI: return pick_backward_s<R, TRI>(P, needk);
    case SIGMOID: return pick_backward_s<R, SIGMOID>(P, needk);
    case ATAN: return pick_backward_s<R, ATAN>(P, needk);
    default: return pick_backward_s<R, GAUSS>(P, needk);
  }
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

template <typename F>
void parallel_chunks(int64_t N, int threads, F fn) {
  const int64_t nchunks = (N + CH - 1) / CH;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && nchunks > 1)
#endif
  for (int64_t c = 0; c < nchunks; ++c) {
    int64_t i0 = c * CH;
    fn(i0, (N - i0) < CH ? (N - i0) : CH);
  }
  (void)threads;
}

// forward(is_double, T, N, x, k, v0, s_ptr, u_ptr, vT_ptr, v_th, v_reset, soft, fire_ge,
//         threads); operands are (ptr, time stride, neuron stride) tuples, v0's ptr 0 = rest.
PyObject* py_forward(PyObject*, PyObject* args) {
  int is_double, soft, fire_ge, threads;
  long long T, N;
  PyObject *ox, *ok, *ov0;
  unsigned long long ps, pu, pv;
  double v_th, v_reset;
  if (!PyArg_ParseTuple(args, "pLLOOOKKKddppi", &is_double, &T, &N, &ox, &ok, &ov0, &ps, &pu,
                        &pv, &v_th, &v_reset, &soft, &fire_ge, &threads))
    return nullptr;
  Operand x, k, v0;
  if (!parse_operand(ox, &x) || !parse_operand(ok, &k) || !parse_operand(ov0, &v0))
    return nullptr;
  Params P{v_th, v_reset, 0.0, soft, fire_ge, 0, 0, T, N};
  Py_BEGIN_ALLOW_THREADS
  if (is_double) {
    FwdFn<double> f = pick_forward<double>(P);
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      f(P, x, k, v0, (double*)ps, (double*)pu, (double*)pv, i0, n);
    });
  } else {
    FwdFn<float> f = pick_forward<float>(P);
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      f(P, x, k, v0, (float*)ps, (float*)pu, (float*)pv, i0, n);
    });
  }
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// backward(is_double, T, N, u_ptr, k, g_s, g_u, g_v, gx_ptr, gk_ptr, v_th, v_reset, soft,
//          fire_ge, detach, surrogate, surrogate_param, threads); absent grads have ptr 0.
PyObject* py_backward(PyObject*, PyObject* args) {
  int is_double, soft, fire_ge, detach, surr, threads;
  long long T, N;
  PyObject *ok, *ogs, *ogu, *ogv;
  unsigned long long pu, pgx, pgk;
  double v_th, v_reset, surr_p;
  if (!PyArg_ParseTuple(args, "pLLKOOOOKKddpppidi", &is_double, &T, &N, &pu, &ok, &ogs, &ogu,
                        &ogv, &pgx, &pgk, &v_th, &v_reset, &soft, &fire_ge, &detach, &surr,
                        &surr_p, &threads))
    return nullptr;
  Operand k, gs, gu, gv;
  if (!parse_operand(ok, &k) || !parse_operand(ogs, &gs) || !parse_operand(ogu, &gu) ||
      !parse_operand(ogv, &gv))
    return nullptr;
  if (surr < RECT || surr > GAUSS) {
    PyErr_SetString(PyExc_ValueError, "unknown surrogate id");
    return nullptr;
  }
  Params P{v_th, v_reset, surr_p, soft, fire_ge, detach, surr, T, N};
  Py_BEGIN_ALLOW_THREADS
  if (is_double) {
    BwdFn<double> f = pick_backward<double>(P, pgk != 0);
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      f(P, (const double*)pu, k, gs, gu, gv, (double*)pgx, (double*)pgk, i0, n);
    });
  } else {
    BwdFn<float> f = pick_backward<float>(P, pgk != 0);
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      f(P, (const float*)pu, k, gs, gu, gv, (float*)pgx, (float*)pgk, i0, n);
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

PyMethodDef methods[] = {
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
