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

template <typename R>
inline R surrogate_grad(R z, int kind, R p) {
  switch (kind) {
    case RECT: return (std::fabs(z) < p / R(2)) ? R(1) / p : R(0);
    case TRI: {
      R g = std::sqrt(p) / R(2) - (p / R(4)) * std::fabs(z);
      return g > R(0) ? g : R(0);
    }
    case SIGMOID: {
      R sg = R(1) / (R(1) + std::exp(-(p * z)));
      return p * sg * (R(1) - sg);
    }
    case ATAN: {
      R w = R(M_PI / 2) * p * z;
      return (p / R(2)) / (R(1) + w * w);
    }
    default: {
      R w = z / p;
      return std::exp(R(-0.5) * (w * w)) / (p * std::sqrt(R(2 * M_PI)));
    }
  }
}

// Pointer to the n neurons [i0, i0 + n) of row t; a broadcast row is copied into buf.
template <typename R>
inline const R* row(const Operand& a, int64_t t, int64_t i0, int64_t n, R* buf) {
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

template <typename R>
void forward_chunk(const Params& P, const Operand& x, const Operand& k, const Operand& v0,
                   R* s, R* u, R* vT, int64_t i0, int64_t n) {
  R v[CH], kb[CH], xb[CH];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset);
  const R* kk = row<R>(k, 0, i0, n, kb);
  if (v0.ptr) {
    const R* p = row<R>(v0, 0, i0, n, xb);
    for (int64_t j = 0; j < n; ++j) v[j] = p[j];
  } else {
    for (int64_t j = 0; j < n; ++j) v[j] = R(0);
  }
  for (int64_t t = 0; t < P.T; ++t) {
    const R* xt = row<R>(x, t, i0, n, xb);
    R* st = s + t * P.N + i0;
    R* ut = u + t * P.N + i0;
    for (int64_t j = 0; j < n; ++j) {
      R uu = v[j] + xt[j];
      bool f = P.fire_ge ? (uu >= v_th) : (uu > v_th);
      R sp = f ? R(1) : R(0);
      R r = P.soft ? (uu - v_th * sp) : (f ? v_reset : uu);
      v[j] = kk[j] * r;
      st[j] = sp;
      ut[j] = uu;
    }
  }
  for (int64_t j = 0; j < n; ++j) vT[i0 + j] = v[j];
}

template <typename R>
void backward_chunk(const Params& P, const R* u, const Operand& k, const Operand& gs,
                    const Operand& gu, const Operand& gv, R* gx, R* gk, int64_t i0, int64_t n) {
  R g[CH], acc[CH], kb[CH], b1[CH], b2[CH];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset), sp_ = R(P.surr_p);
  const bool has_gs = gs.ptr != 0, has_gu = gu.ptr != 0;
  bool has_gv = gv.ptr != 0;  // dL/dv[t] is non-zero (from v_T, or from a later step)
  const R* kk = row<R>(k, 0, i0, n, kb);
  if (has_gv) {
    const R* p = row<R>(gv, 0, i0, n, b1);
    for (int64_t j = 0; j < n; ++j) g[j] = p[j];
  } else {
    for (int64_t j = 0; j < n; ++j) g[j] = R(0);
  }
  for (int64_t j = 0; j < n; ++j) acc[j] = R(0);
  for (int64_t t = P.T - 1; t >= 0; --t) {
    const R* ut = u + t * P.N + i0;
    const R* gst = has_gs ? row<R>(gs, t, i0, n, b1) : nullptr;
    const R* gut = has_gu ? row<R>(gu, t, i0, n, b2) : nullptr;
    R* gxt = gx + t * P.N + i0;
    for (int64_t j = 0; j < n; ++j) {
      R uu = ut[j];
      R z = uu - v_th;
      bool need_h = has_gs || (has_gv && !P.detach);
      R h = need_h ? surrogate_grad<R>(z, P.surr, sp_) : R(0);
      R out = has_gu ? gut[j] : R(0);
      if (has_gs) out = has_gu ? out + gst[j] * h : gst[j] * h;
      if (has_gv) {
        bool f = P.fire_ge ? (uu >= v_th) : (uu > v_th);
        R sp = f ? R(1) : R(0);
        R m;  // dr/du
        if (P.soft) {
          m = P.detach ? R(1) : (h * -v_th + R(1));
        } else {
          m = R(1) - sp;
          if (!P.detach) m = m + (v_reset - uu) * h;
        }
        m = m * kk[j];
        out = out + m * g[j];
        if (gk) {
          R r = P.soft ? (uu - v_th * sp) : (uu + uu * sp * R(-1));
          if (!P.soft && v_reset != R(0)) r = r + sp * v_reset;
          acc[j] = acc[j] + g[j] * r;
        }
      }
      gxt[j] = out;
      g[j] = out;
    }
    has_gv = true;
  }
  if (gk)
    for (int64_t j = 0; j < n; ++j) gk[i0 + j] = acc[j];
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
  if (is_double)
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      forward_chunk<double>(P, x, k, v0, (double*)ps, (double*)pu, (double*)pv, i0, n);
    });
  else
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      forward_chunk<float>(P, x, k, v0, (float*)ps, (float*)pu, (float*)pv, i0, n);
    });
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
  if (is_double)
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      backward_chunk<double>(P, (const double*)pu, k, gs, gu, gv, (double*)pgx, (double*)pgk,
                             i0, n);
    });
  else
    parallel_chunks(N, threads, [&](int64_t i0, int64_t n) {
      backward_chunk<float>(P, (const float*)pu, k, gs, gu, gv, (float*)pgx, (float*)pgk, i0,
                            n);
    });
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
