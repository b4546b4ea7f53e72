/*
 * spikeloom.ops.frames._speedups -- optional C kernels of the frame-counting operator
 * (the "c" backend of spikeloom.ops.frames, used by spikeloom.events.frames.to_frame).
 *
 * The event records are the packed 13-byte structs of spikeloom.events.core.EVENT_DTYPE:
 *
 *     offset 0: x  uint16 little-endian
 *     offset 2: y  uint16 little-endian
 *     offset 4: p  uint8
 *     offset 5: t  int64  little-endian
 *
 * Fields are read with memcpy from their byte offset (the records are not aligned). Only the
 * CPython buffer protocol is used (no numpy C API), so building needs a C compiler and the
 * Python headers only. The Python side (c_backend.py) registers the "c" backend only when this
 * module imports; otherwise the numpy backend is used.
 *
 * Functions (all release the GIL while they loop):
 *
 *   count_frames(records, lo, hi, W, H, P, out, check_order=False)
 *           -> (first_bad, first_unsorted)
 *       For every frame j, add 1 to out[j, p*H*W + y*W + x] for each event i in
 *       [lo[j], hi[j]). Stops at the first event (in frame order) with x >= W, y >= H or
 *       (P > 1 and p >= P) -> first_bad, or, with check_order, with t[i] < t[i-1] ->
 *       first_unsorted; the counts are then incomplete. -1 means no problem.
 *       With P == 1 the polarity is ignored (both merged into channel 0).
 *   scan_events(records, start, stop, W, H, P) -> (first_unsorted, first_bad)
 *       One pass over events [start, stop): first_unsorted is the smallest i with
 *       t[i] < t[i-1] (i > start), first_bad the smallest i that is out of range as above;
 *       each is -1 when there is none.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define REC_SIZE 13
#define OFF_X 0
#define OFF_Y 2
#define OFF_P 4
#define OFF_T 5

/* ---------------------------------------------------------------------------------------- */
/* unaligned little-endian field reads                                                       */
/* ---------------------------------------------------------------------------------------- */

static inline uint32_t
rd_u16(const char *ptr)
{
#if PY_LITTLE_ENDIAN
    uint16_t v;
    memcpy(&v, ptr, sizeof v);
    return v;
#else
    const unsigned char *b = (const unsigned char *)ptr;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8);
#endif
}

static inline int64_t
rd_i64(const char *ptr)
{
    uint64_t v;
#if PY_LITTLE_ENDIAN
    memcpy(&v, ptr, sizeof v);
#else
    const unsigned char *b = (const unsigned char *)ptr;
    v = 0;
    for (int k = 7; k >= 0; k--) {
        v = (v << 8) | b[k];
    }
#endif
    return (int64_t)v;
}

/* ---------------------------------------------------------------------------------------- */
/* argument helpers                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* 1-D buffer of 13-byte records, any stride (views such as ev[::2] are fine). */
static int
get_records(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES) < 0) {
        return -1;
    }
    if (view->ndim != 1 || view->itemsize != REC_SIZE) {
        PyErr_Format(PyExc_ValueError,
                     "records must be a 1-D buffer of %d-byte EVENT_DTYPE records, got ndim=%d, "
                     "itemsize=%zd",
                     REC_SIZE, view->ndim, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Strip a byte-order/size prefix from a struct-module format string. */
static const char *
format_code(const Py_buffer *view)
{
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') {
        if ((*f == '>' || *f == '!') && PY_LITTLE_ENDIAN) {
            return "";  /* foreign byte order: rejected by the callers */
        }
        if (*f == '<' && !PY_LITTLE_ENDIAN) {
            return "";
        }
        f++;
    }
    return f;
}

/* C-contiguous 1-D int64 vector. */
static int
get_i64_vector(PyObject *obj, Py_buffer *view, const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *code = format_code(view);
    if (view->ndim != 1 || view->itemsize != 8 || strlen(code) != 1 ||
        (code[0] != 'q' && code[0] != 'l')) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a 1-D C-contiguous native int64 array, got format '%s', "
                     "itemsize %zd, ndim %d",
                     name, view->format ? view->format : "B", view->itemsize, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Writable C-contiguous buffer of native unsigned integers (1, 2, 4 or 8 bytes). */
static int
get_counts(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        return -1;
    }
    const char *code = format_code(view);
    int ok = strlen(code) == 1 && strchr("BHILQ", code[0]) != NULL &&
             (view->itemsize == 1 || view->itemsize == 2 || view->itemsize == 4 ||
              view->itemsize == 8);
    if (!ok) {
        PyErr_Format(PyExc_ValueError,
                     "out must be a writable C-contiguous native unsigned integer array "
                     "(uint8/16/32/64), got format '%s', itemsize %zd",
                     view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
check_sensor(Py_ssize_t w, Py_ssize_t h, Py_ssize_t p)
{
    if (w < 1 || w > 65536 || h < 1 || h > 65536 || p < 1 || p > 256) {
        PyErr_Format(PyExc_ValueError,
                     "sensor size must have 1 <= W, H <= 65536 and 1 <= P <= 256, got "
                     "(%zd, %zd, %zd)",
                     w, h, p);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* count_frames                                                                               */
/* ---------------------------------------------------------------------------------------- */

/*
 * One kernel per counter type. `stride` and `check_order` are parameters of an inline
 * function so that the compiler specialises the common cases (packed stride 13, no order
 * check) at the call sites below. With check_order, every pair (i-1, i) with i in a frame
 * and i > 0 is checked for t[i] >= t[i-1] (also across the frame's first event).
 */
#define DEFINE_COUNT_KERNEL(NAME, T)                                                          \
    static inline void NAME(const char *base, Py_ssize_t stride, int check_order,             \
                            const int64_t *lo, const int64_t *hi, Py_ssize_t n_frames,        \
                            uint32_t w, uint32_t h, uint32_t p_limit, size_t p_mul,           \
                            size_t phw, T *out, Py_ssize_t *first_bad,                        \
                            Py_ssize_t *first_unsorted)                                       \
    {                                                                                         \
        for (Py_ssize_t j = 0; j < n_frames; j++) {                                           \
            T *frame = out + (size_t)j * phw;                                                 \
            const char *rec = base + (Py_ssize_t)lo[j] * stride;                              \
            int64_t prev = 0;                                                                 \
            if (check_order && hi[j] > lo[j]) {                                               \
                prev = rd_i64(rec + (lo[j] > 0 ? -stride : 0) + OFF_T);                       \
            }                                                                                 \
            for (int64_t i = lo[j]; i < hi[j]; i++, rec += stride) {                          \
                uint32_t x = rd_u16(rec + OFF_X);                                             \
                uint32_t y = rd_u16(rec + OFF_Y);                                             \
                uint32_t p = (uint8_t)rec[OFF_P];                                             \
                if (check_order) {                                                            \
                    int64_t t = rd_i64(rec + OFF_T);                                          \
                    if (t < prev) {                                                           \
                        *first_unsorted = (Py_ssize_t)i;                                      \
                        return;                                                               \
                    }                                                                         \
                    prev = t;                                                                 \
                }                                                                             \
                if ((x >= w) | (y >= h) | (p >= p_limit)) {                                   \
                    *first_bad = (Py_ssize_t)i;                                               \
                    return;                                                                   \
                }                                                                             \
                frame[(size_t)p * p_mul + (size_t)y * w + x] += 1;                            \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_COUNT_KERNEL(count_u8, uint8_t)
DEFINE_COUNT_KERNEL(count_u16, uint16_t)
DEFINE_COUNT_KERNEL(count_u32, uint32_t)
DEFINE_COUNT_KERNEL(count_u64, uint64_t)

#define CALL_KERNEL(KERNEL, T, STRIDE, CHECK)                                                \
    KERNEL(base, STRIDE, CHECK, lo, hi, n_frames, uw, uh, p_limit, p_mul, phw, (T *)out,     \
           &bad, &unsorted)

#define DISPATCH(KERNEL, T)                                                                  \
    do {                                                                                     \
        if (stride == REC_SIZE && !check_order) {                                            \
            CALL_KERNEL(KERNEL, T, REC_SIZE, 0);                                             \
        }                                                                                    \
        else if (stride == REC_SIZE) {                                                       \
            CALL_KERNEL(KERNEL, T, REC_SIZE, 1);                                             \
        }                                                                                    \
        else {                                                                               \
            CALL_KERNEL(KERNEL, T, stride, check_order);                                     \
        }                                                                                    \
    } while (0)

PyDoc_STRVAR(count_frames_doc,
"count_frames(records, lo, hi, W, H, P, out, check_order=False) -> (first_bad, first_unsorted)\n"
"\n"
"Add per-pixel event counts of frames [lo[j], hi[j]) to out[j] (zero it first).\n"
"\n"
"records: 1-D buffer [N] of 13-byte EVENT_DTYPE records (any stride).\n"
"lo, hi: C-contiguous int64 [J] with 0 <= lo[j] <= hi[j] <= N.\n"
"out: writable C-contiguous unsigned ints (1/2/4/8 bytes) of J*P*H*W elements, laid out\n"
"     [J, P, H, W]; the caller picks a type that cannot overflow (max frame length).\n"
"With P == 1 both polarities go to channel 0.\n"
"The loop stops at the first problem, in frame order: first_bad is the index of an event\n"
"with x >= W, y >= H or (P > 1 and p >= P); with check_order, first_unsorted is an i in a\n"
"frame with t[i] < t[i-1]. Both are -1 when there is no problem; otherwise out is\n"
"incomplete.");

static PyObject *
count_frames(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *rec_obj, *lo_obj, *hi_obj, *out_obj;
    Py_ssize_t w, h, p;
    int check_order = 0;
    if (!PyArg_ParseTuple(args, "OOOnnnO|p:count_frames", &rec_obj, &lo_obj, &hi_obj, &w, &h, &p,
                          &out_obj, &check_order)) {
        return NULL;
    }
    if (check_sensor(w, h, p) < 0) {
        return NULL;
    }
    Py_buffer rv, lv, hv, ov;
    if (get_records(rec_obj, &rv) < 0) {
        return NULL;
    }
    if (get_i64_vector(lo_obj, &lv, "lo") < 0) {
        PyBuffer_Release(&rv);
        return NULL;
    }
    if (get_i64_vector(hi_obj, &hv, "hi") < 0) {
        PyBuffer_Release(&rv);
        PyBuffer_Release(&lv);
        return NULL;
    }
    if (get_counts(out_obj, &ov) < 0) {
        PyBuffer_Release(&rv);
        PyBuffer_Release(&lv);
        PyBuffer_Release(&hv);
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = rv.shape[0];
    const Py_ssize_t n_frames = lv.shape[0];
    const size_t phw = (size_t)w * (size_t)h * (size_t)p;
    const int64_t *lo = (const int64_t *)lv.buf;
    const int64_t *hi = (const int64_t *)hv.buf;
    if (hv.shape[0] != n_frames) {
        PyErr_Format(PyExc_ValueError, "lo and hi must have the same length, got %zd and %zd",
                     n_frames, hv.shape[0]);
        goto done;
    }
    if ((size_t)ov.len != (size_t)n_frames * phw * (size_t)ov.itemsize) {
        PyErr_Format(PyExc_ValueError,
                     "out must hold J*P*H*W = %zd*%zu elements, got %zd elements", n_frames, phw,
                     ov.len / ov.itemsize);
        goto done;
    }
    for (Py_ssize_t j = 0; j < n_frames; j++) {
        if (lo[j] < 0 || lo[j] > hi[j] || hi[j] > (int64_t)n) {
            PyErr_Format(PyExc_ValueError,
                         "frame %zd has bounds [%lld, %lld); need 0 <= lo <= hi <= N = %zd", j,
                         (long long)lo[j], (long long)hi[j], n);
            goto done;
        }
    }
    {
        const char *base = (const char *)rv.buf;
        const Py_ssize_t stride = rv.strides[0];
        const uint32_t uw = (uint32_t)w, uh = (uint32_t)h;
        /* P == 1 merges the polarities: no polarity limit and no channel offset */
        const uint32_t p_limit = p > 1 ? (uint32_t)p : 256u;
        const size_t p_mul = p > 1 ? (size_t)w * (size_t)h : 0;
        const Py_ssize_t itemsize = ov.itemsize;
        void *out = ov.buf;
        Py_ssize_t bad = -1, unsorted = -1;
        Py_BEGIN_ALLOW_THREADS
        switch (itemsize) {
        case 1:
            DISPATCH(count_u8, uint8_t);
            break;
        case 2:
            DISPATCH(count_u16, uint16_t);
            break;
        case 4:
            DISPATCH(count_u32, uint32_t);
            break;
        default:
            DISPATCH(count_u64, uint64_t);
            break;
        }
        Py_END_ALLOW_THREADS
        result = Py_BuildValue("(nn)", bad, unsorted);
    }
done:
    PyBuffer_Release(&rv);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&hv);
    PyBuffer_Release(&ov);
    return result;
}

/* ---------------------------------------------------------------------------------------- */
/* scan_events                                                                                */
/* ---------------------------------------------------------------------------------------- */

static inline void
scan_kernel(const char *base, Py_ssize_t stride, Py_ssize_t start, Py_ssize_t stop, uint32_t w,
            uint32_t h, uint32_t p_limit, Py_ssize_t *first_unsorted, Py_ssize_t *first_bad)
{
    Py_ssize_t unsorted = -1, bad = -1;
    const char *rec = base + start * stride;
    int64_t prev = rd_i64(rec + OFF_T);
    for (Py_ssize_t i = start; i < stop; i++, rec += stride) {
        int64_t t = rd_i64(rec + OFF_T);
        uint32_t x = rd_u16(rec + OFF_X);
        uint32_t y = rd_u16(rec + OFF_Y);
        uint32_t p = (uint8_t)rec[OFF_P];
        if (t < prev && unsorted < 0) {
            unsorted = i;
            if (bad >= 0) {
                break;
            }
        }
        if (((x >= w) | (y >= h) | (p >= p_limit)) && bad < 0) {
            bad = i;
            if (unsorted >= 0) {
                break;
            }
        }
        prev = t;
    }
    *first_unsorted = unsorted;
    *first_bad = bad;
}

PyDoc_STRVAR(scan_events_doc,
"scan_events(records, start, stop, W, H, P) -> (first_unsorted, first_bad)\n"
"\n"
"One pass over records[start:stop]: first_unsorted is the smallest i > start with\n"
"t[i] < t[i-1], first_bad the smallest i with x >= W, y >= H or (P > 1 and p >= P);\n"
"each is -1 when there is none. Indices refer to the whole records buffer.");

static PyObject *
scan_events(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *rec_obj;
    Py_ssize_t start, stop, w, h, p;
    if (!PyArg_ParseTuple(args, "Onnnnn:scan_events", &rec_obj, &start, &stop, &w, &h, &p)) {
        return NULL;
    }
    if (check_sensor(w, h, p) < 0) {
        return NULL;
    }
    Py_buffer rv;
    if (get_records(rec_obj, &rv) < 0) {
        return NULL;
    }
    const Py_ssize_t n = rv.shape[0];
    if (start < 0 || start > stop || stop > n) {
        PyErr_Format(PyExc_ValueError, "need 0 <= start <= stop <= N = %zd, got [%zd, %zd)", n,
                     start, stop);
        PyBuffer_Release(&rv);
        return NULL;
    }
    Py_ssize_t unsorted = -1, bad = -1;
    if (stop > start) {
        const char *base = (const char *)rv.buf;
        const Py_ssize_t stride = rv.strides[0];
        const uint32_t p_limit = p > 1 ? (uint32_t)p : 256u;
        Py_BEGIN_ALLOW_THREADS
        if (stride == REC_SIZE) {
            scan_kernel(base, REC_SIZE, start, stop, (uint32_t)w, (uint32_t)h, p_limit,
                        &unsorted, &bad);
        }
        else {
            scan_kernel(base, stride, start, stop, (uint32_t)w, (uint32_t)h, p_limit, &unsorted,
                        &bad);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&rv);
    return Py_BuildValue("(nn)", unsorted, bad);
}

/* ---------------------------------------------------------------------------------------- */
/* module                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"count_frames", count_frames, METH_VARARGS, count_frames_doc},
    {"scan_events", scan_events, METH_VARARGS, scan_events_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "spikeloom.ops.frames._speedups",
    "Optional C kernels of the frame-counting operator (event records -> frame counts).",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
