/* faced.vision._jpeg_band: decode only a band of a JPEG, with libjpeg-turbo's own API.
 *
 * Owns one thing: writing the RGBA pixels of a rectangle of a baseline or progressive JPEG
 * into the caller's full-frame buffer, exactly the pixels a whole decode gives there.
 * Does not own choosing the rectangle (faced.vision.tracker), falling back to a whole decode
 * (faced.vision.video) or anything outside the rectangle, which it leaves as it was.
 * Why: a tracked frame's crop reads ~17 % of a 640x480 frame. libjpeg-turbo can skip the
 * colour conversion, upsampling and IDCT of the rows above the band
 * (jpeg_skip_scanlines), of the columns beside it (jpeg_crop_scanline) and everything below
 * it (jpeg_abort_decompress); simplejpeg and PyTurboJPEG (for libjpeg-turbo 2.x, which
 * Debian 12 ships) expose none of that, and libjpeg's error exit must longjmp, which ctypes
 * cannot survive. docs/performance.md has the figures.
 *
 * Exactness: fancy (triangle) upsampling reads the neighbouring chroma rows and columns, so
 * the band's own first and last rows and columns can differ from a whole decode's. The band
 * is widened by EDGE pixels on each side that is not the frame's edge, and only the asked
 * rectangle is promised. Warnings (corrupt data libjpeg would patch over) are errors here:
 * the caller then decodes the whole frame its usual way, so a damaged frame is handled
 * exactly as before.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#define EDGE 2         /* px decoded beyond each side of the asked band */
#define ROWS_AT_ONCE 16 /* scanlines per jpeg_read_scanlines call */

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} ErrorTrap;

static void escape_on_error(j_common_ptr info) {
    ErrorTrap *trap = (ErrorTrap *)info->err;
    (*info->err->format_message)(info, trap->message);
    longjmp(trap->escape, 1);
}

/* Level < 0 is a warning (corrupt data): treated as an error. Trace messages are dropped. */
static void escape_on_warning(j_common_ptr info, int level) {
    if (level < 0) {
        escape_on_error(info);
    }
}

typedef struct {
    const unsigned char *data;
    size_t size;
    unsigned char *out;
    Py_ssize_t out_size;
    long left, top, right, bottom;
    /* results */
    JDIMENSION width, height;
    long done_left, done_top, done_right, done_bottom;
} Job;

/* 0 on success; otherwise trap->message says why. Runs without the GIL. */
static int decode(Job *job, ErrorTrap *trap) {
    struct jpeg_decompress_struct info;
    /* volatile: read after longjmp */
    volatile int created = 0;

    info.err = jpeg_std_error(&trap->manager);
    trap->manager.error_exit = escape_on_error;
    trap->manager.emit_message = escape_on_warning;
    trap->message[0] = '\0';
    if (setjmp(trap->escape)) {
        if (created) {
            jpeg_destroy_decompress(&info);
        }
        return -1;
    }
    jpeg_create_decompress(&info);
    created = 1;
    jpeg_mem_src(&info, job->data, (unsigned long)job->size);
    jpeg_read_header(&info, TRUE);
    job->width = info.image_width;
    job->height = info.image_height;
    if ((Py_ssize_t)info.image_width * (Py_ssize_t)info.image_height * 4 != job->out_size) {
        snprintf(trap->message, sizeof trap->message,
                 "the JPEG is %ux%u, the buffer is not its RGBA size",
                 (unsigned)info.image_width, (unsigned)info.image_height);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    if (job->right > (long)info.image_width || job->bottom > (long)info.image_height) {
        snprintf(trap->message, sizeof trap->message, "the band is outside the %ux%u JPEG",
                 (unsigned)info.image_width, (unsigned)info.image_height);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = JCS_EXT_RGBA;
    /* What a whole decode by simplejpeg uses (TurboJPEG's defaults): accurate integer IDCT,
     * fancy upsampling. Set explicitly so that a change of libjpeg defaults cannot drift. */
    info.dct_method = JDCT_ISLOW;
    info.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&info);

    long top = job->top > EDGE ? job->top - EDGE : 0;
    long bottom = job->bottom + EDGE < (long)info.output_height ? job->bottom + EDGE
                                                                : (long)info.output_height;
    long left = job->left > EDGE ? job->left - EDGE : 0;
    long right = job->right + EDGE < (long)info.output_width ? job->right + EDGE
                                                             : (long)info.output_width;
    JDIMENSION x = (JDIMENSION)left;
    JDIMENSION span = (JDIMENSION)(right - left);
    if (span < info.output_width) {
        jpeg_crop_scanline(&info, &x, &span); /* widens to whole iMCU columns */
    } else {
        x = 0;
    }
    if (top > 0) {
        jpeg_skip_scanlines(&info, (JDIMENSION)top);
    }
    const size_t stride = (size_t)job->width * 4;
    JSAMPROW rows[ROWS_AT_ONCE];
    while ((long)info.output_scanline < bottom) {
        JDIMENSION first = info.output_scanline;
        JDIMENSION count = (JDIMENSION)(bottom - (long)first);
        if (count > ROWS_AT_ONCE) {
            count = ROWS_AT_ONCE;
        }
        for (JDIMENSION i = 0; i < count; i++) {
            rows[i] = job->out + (size_t)(first + i) * stride + (size_t)x * 4;
        }
        if (jpeg_read_scanlines(&info, rows, count) == 0) {
            snprintf(trap->message, sizeof trap->message, "the JPEG ended early");
            jpeg_destroy_decompress(&info);
            return -1;
        }
    }
    job->done_left = (long)x;
    job->done_right = (long)(x + span);
    job->done_top = top;
    job->done_bottom = bottom;
    /* Nothing below the band is needed: no entropy decoding of it either. */
    jpeg_abort_decompress(&info);
    jpeg_destroy_decompress(&info);
    return 0;
}

static PyObject *decode_band(PyObject *module, PyObject *args) {
    Py_buffer data, out;
    Job job;
    ErrorTrap trap;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*w*llll:decode_band", &data, &out, &job.left, &job.top,
                          &job.right, &job.bottom)) {
        return NULL;
    }
    PyObject *result = NULL;
    /* "w*" has already refused read-only and non-contiguous buffers (TypeError). */
    if (job.left < 0 || job.top < 0 || job.left >= job.right || job.top >= job.bottom) {
        PyErr_Format(PyExc_ValueError, "band (%ld, %ld, %ld, %ld) is empty or negative",
                     job.left, job.top, job.right, job.bottom);
    } else {
        job.data = data.buf;
        job.size = (size_t)data.len;
        job.out = out.buf;
        job.out_size = out.len;
        int status;
        Py_BEGIN_ALLOW_THREADS status = decode(&job, &trap);
        Py_END_ALLOW_THREADS if (status != 0) {
            PyErr_Format(PyExc_ValueError, "JPEG band: %s", trap.message);
        }
        else {
            result = Py_BuildValue("(llll)", job.done_left, job.done_top, job.done_right,
                                   job.done_bottom);
        }
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_band", decode_band, METH_VARARGS,
     "decode_band(jpeg, out, left, top, right, bottom) -> (left, top, right, bottom)\n\n"
     "Decode the JPEG's pixels in [left, right) x [top, bottom) as RGBA into ``out``, a\n"
     "C-contiguous buffer of the whole frame's RGBA size; pixels outside that rectangle are\n"
     "left as they were or overwritten with the frame's, never with anything else. Returns\n"
     "the rectangle actually written (the asked one, widened). ValueError when the JPEG\n"
     "cannot be decoded cleanly (errors and warnings alike) or does not fit ``out``."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg_band",
    "Decode only a band of a JPEG with libjpeg-turbo (see the C source's header).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__jpeg_band(void) { return PyModule_Create(&module); }
